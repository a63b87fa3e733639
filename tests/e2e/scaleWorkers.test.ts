import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { tapName } from "../../components/vm/qemu";
import { HostState } from "./leaks";
import {
  mainPidScript,
  nodeLeftovers,
  parseMainPids,
  restartedUnits,
  spreadWorkload,
  stepCounts,
  unexpectedSteps,
} from "./scaleWorkers";

const urn = (type: string, name: string) => `urn:pulumi:e2e::hardway::${type}::${name}`;

describe("the worker scale phases' judgements", () => {
  it("reads each running unit's MainPID, with a stand-in systemctl, and passes shellcheck", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-mainpid-"));
    fs.writeFileSync(
      path.join(dir, "systemctl"),
      '#!/usr/bin/env bash\ncase "$*" in *kubelet.service*) echo 812 ;; *etcd.service*) echo 0 ;; *) exit 1 ;; esac\n',
      { mode: 0o755 },
    );
    const run = spawnSync("bash", ["-c", mainPidScript()], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` },
    });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(parseMainPids(run.stdout)).toEqual({ kubelet: 812 });
    const check = spawnSync("shellcheck", ["-s", "bash", "-"], {
      input: `#!/usr/bin/env bash\n${mainPidScript()}\n`,
      encoding: "utf8",
    });
    expect(check.stdout + check.stderr).toBe("");
  });

  it("names every daemon whose main process changed or went", () => {
    const before = { control0: { etcd: 10, kubelet: 20 }, worker0: { kubelet: 30 } };
    expect(
      restartedUnits(before, { control0: { etcd: 10, kubelet: 20 }, worker0: { kubelet: 30 } }),
    ).toEqual([]);
    expect(restartedUnits(before, { control0: { etcd: 11 }, worker0: { kubelet: 30 } })).toEqual([
      "control0/etcd 10 → 11",
      "control0/kubelet 20 → gone",
    ]);
  });

  it("allows the node's own creations (or deletions) and the host network's update, nothing else", () => {
    const steps = [
      { op: "same", urn: urn("hardway:vm:VirtualMachine", "vm-worker0") },
      { op: "create", urn: urn("pulumi-nodejs:dynamic/cluster:NodeStep", "k8s-kubelet-worker1") },
      { op: "update", urn: urn("pulumi-nodejs:dynamic/host:EnsuredScript", "host-linux") },
    ];
    expect(unexpectedSteps(steps, "worker1", "add")).toEqual([]);
    expect(stepCounts(steps)).toBe("1 create, 1 update");
    expect(unexpectedSteps(steps, "worker1", "remove")).toEqual(["create k8s-kubelet-worker1"]);
    // A loaded API that missed the health probe's status: a wait planned, nothing changed.
    const probe = {
      op: "update",
      urn: urn("pulumi-nodejs:dynamic/host:EnsuredScript", "k8s-api-health"),
    };
    expect(unexpectedSteps([...steps, probe], "worker1", "add")).toEqual([]);
    expect(unexpectedSteps([{ ...probe, op: "replace" }], "worker1", "add")).toEqual([
      "replace k8s-api-health",
    ]);
    expect(
      unexpectedSteps(
        [
          {
            op: "update",
            urn: urn("pulumi-nodejs:dynamic/cluster:NodeStep", "k8s-kubelet-worker0"),
          },
          {
            op: "replace",
            urn: urn("pulumi-nodejs:dynamic/host:EnsuredScript", "vm-worker1-qemu"),
          },
        ],
        "worker1",
        "add",
      ),
    ).toEqual(["update k8s-kubelet-worker0", "replace vm-worker1-qemu"]);
  });

  it("finds what the host still holds of a removed node, and nothing of the others", () => {
    const stack = "e2e-upgrade-1a2b3c";
    const state: HostState = {
      processes: [
        {
          pid: 7,
          command: `qemu-system-x86_64 -drive file=/var/lib/hardway/${stack}/vms/worker1/disk.qcow2`,
        },
        {
          pid: 8,
          command: `qemu-system-x86_64 -drive file=/var/lib/hardway/${stack}/vms/worker0/disk.qcow2`,
        },
      ],
      links: [{ ifname: tapName(stack, "worker1") }, { ifname: tapName(stack, "worker0") }],
      routes: [
        { dst: "10.200.2.0/24", gateway: "192.168.234.22" },
        { dst: "10.200.1.0/24", gateway: "192.168.234.21" },
      ],
      nftTables: [],
      iptablesRules: [],
      exportsText: "",
      sharedDnsmasqConf: "",
      stateDirs: [],
    };
    const conf = [
      "host-record=worker0,worker0.hardway.internal,192.168.234.21",
      "host-record=worker1,worker1.hardway.internal,192.168.234.22",
      "dhcp-host=52:54:c0:a8:ea:16,192.168.234.22,worker1",
    ].join("\n");
    const target = { stack, node: "worker1", ip: "192.168.234.22" };
    expect(nodeLeftovers(state, conf, true, target)).toEqual([
      "VM process 7",
      `tap ${tapName(stack, "worker1")}`,
      "route 10.200.2.0/24 via 192.168.234.22",
      `VM directory /var/lib/hardway/${stack}/vms/worker1`,
      "dnsmasq: host-record=worker1,worker1.hardway.internal,192.168.234.22",
      "dnsmasq: dhcp-host=52:54:c0:a8:ea:16,192.168.234.22,worker1",
    ]);
    const clean = {
      ...state,
      processes: [state.processes[1]],
      links: [state.links[1]],
      routes: [state.routes[1]],
    };
    expect(nodeLeftovers(clean, conf.split("\n")[0], false, target)).toEqual([]);
  });

  it("spreads two replicas over the named workers, under a budget that keeps one", () => {
    const [deployment, budget] = spreadWorkload("spread", ["worker0", "worker1"]) as unknown as [
      { spec: { replicas: number; template: { spec: Record<string, unknown> } } },
      { spec: { minAvailable: number } },
    ];
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.template.spec.topologySpreadConstraints).toEqual([
      expect.objectContaining({
        maxSkew: 1,
        whenUnsatisfiable: "DoNotSchedule",
        nodeTaintsPolicy: "Honor",
      }),
    ]);
    expect(JSON.stringify(deployment.spec.template.spec.affinity)).toContain(
      '["worker0","worker1"]',
    );
    expect(budget.spec.minAvailable).toBe(1);
  });
});
