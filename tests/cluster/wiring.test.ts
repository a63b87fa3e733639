/**
 * The cluster's steps as KubernetesCluster wires them, under mocks: what waits for what, what
 * each step installs and removes, where secrets travel, and the longest chain of steps.
 */
import * as pulumi from "@pulumi/pulumi";
import { longestChain } from "../../components/cluster/graph";
import { parseFileBundle } from "../../components/cluster/remoteFiles";
import { RecordedResource, installMocks } from "../harness/mocks";
import { buildScenario, settled } from "./fixtures";

const NODE_STEP = "pulumi-nodejs:dynamic/cluster:NodeStep";
const ENSURED = "pulumi-nodejs:dynamic/host:EnsuredScript";
const STEP_TYPES = new Set([NODE_STEP, ENSURED]);

let resources: RecordedResource[];

beforeAll(async () => {
  resources = await installMocks(pulumi);
  await buildScenario(pulumi, { prefix: "std", raw: {} });
  await buildScenario(pulumi, {
    prefix: "crio",
    raw: { containerRuntime: "cri-o", arch: "arm64" },
    // arm64 guests on this amd64 host run emulated.
    emulated: true,
  });
  await buildScenario(pulumi, { prefix: "cil", raw: { cni: "cilium" } });
  await buildScenario(pulumi, { prefix: "cp", raw: { stopAfter: "controlPlane" } });
  await settled(resources);
}, 600_000);

const inScenario = (prefix: string) => resources.filter((r) => r.name.startsWith(`${prefix}-`));
const named = (name: string) => {
  const found = resources.find((r) => r.name === name);
  if (found === undefined) {
    throw new Error(`no resource ${name}`);
  }
  return found;
};
interface Target {
  node: string;
  instance: string;
  hostKey: string;
}
const targets = (r: RecordedResource) => (r.inputs.targets as Target[]).map((t) => t.node);
const argv = (r: RecordedResource, key: "apply" | "remove") => r.inputs[key] as string[];
const bundle = (r: RecordedResource, node: string) =>
  parseFileBundle((r.inputs.bundles as Record<string, string>)[node]);

describe("ordering", () => {
  it("runs etcd as one step over the control nodes, healthy as a cluster when it completes", () => {
    const etcd = named("std-etcd-members");
    expect(targets(etcd)).toEqual(["control0", "control1", "control2"]);
    expect(argv(etcd, "apply")).toEqual(
      expect.arrayContaining(["--start-no-block", "etcd.service"]),
    );
    expect(etcd.inputs.readiness).toEqual(expect.arrayContaining(["--scope", "member"]));
    // A renewed leaf certificate restarts no member; the CA and the unit still do.
    const noRestart = argv(etcd, "apply").flatMap((word, i, all) =>
      all[i - 1] === "--no-restart" ? [word] : [],
    );
    expect(noRestart.sort()).toEqual([
      "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
      "/etc/kubernetes/pki/etcd/healthcheck-client.key",
      "/etc/kubernetes/pki/etcd/peer.crt",
      "/etc/kubernetes/pki/etcd/peer.key",
      "/etc/kubernetes/pki/etcd/server.crt",
      "/etc/kubernetes/pki/etcd/server.key",
    ]);
    expect(etcd.inputs.finalCheck).toEqual(expect.arrayContaining(["--scope", "cluster"]));
  });

  it("gives etcd Raft timing for slow members only when the VMs are emulated", () => {
    const unit = (prefix: string) =>
      bundle(named(`${prefix}-etcd-members`), "control1").find(
        (f) => f.path === "/etc/systemd/system/etcd.service",
      )?.content ?? "";
    expect(unit("std")).toContain("--initial-cluster-state=new");
    expect(unit("std")).not.toContain("--heartbeat-interval");
    expect(unit("crio")).toContain("--heartbeat-interval=500");
    expect(unit("crio")).toContain("--election-timeout=5000");
  });

  it("gives the API servers a 300 s request timeout only when the VMs are emulated", () => {
    const unit = (prefix: string) =>
      bundle(named(`${prefix}-control-kube-apiserver`), "control0").find(
        (f) => f.path === "/etc/systemd/system/kube-apiserver.service",
      )?.content ?? "";
    expect(unit("std")).toContain("--secure-port=6443");
    expect(unit("std")).not.toContain("--request-timeout");
    expect(unit("crio")).toContain("--request-timeout=300s");
  });

  it("starts the API servers, one step rolling over the control nodes, only after etcd", () => {
    const api = named("std-control-kube-apiserver");
    expect(targets(api)).toEqual(["control0", "control1", "control2"]);
    expect(api.dependencies).toContain(named("std-etcd-members").urn);
    expect(api.inputs.readiness).toEqual(expect.arrayContaining(["api-ready.sh"]));
  });

  it("counts an API server ready once it serves its OpenAPI document, read with files it installs", () => {
    const api = named("std-control-kube-apiserver");
    const readiness = api.inputs.readiness as string[];
    const option = (flag: string) => readiness[readiness.indexOf(flag) + 1];
    const installed = bundle(api, "control0").map((f) => f.path);
    for (const flag of ["--cacert", "--client-cert", "--client-key"]) {
      expect(installed).toContain(option(flag));
    }
    expect(option("--client-cert")).toBe("/etc/kubernetes/pki/apiserver-kubelet-client.crt");
  });

  it("starts each kubelet after its own runtime only, not other nodes' nor the API probe", () => {
    const apiHealth = named("std-api-health").urn;
    for (const node of ["control0", "worker0", "worker2"]) {
      const deps = named(`std-kubelet-${node}`).dependencies;
      expect(deps).toContain(named(`std-runtime-${node}-containerd`).urn);
      expect(deps).not.toContain(apiHealth);
      expect(deps).not.toContain(
        named(`std-runtime-${node === "worker0" ? "worker1" : "worker0"}-containerd`).urn,
      );
    }
  });

  it("takes each VM's instance id as an input of every step on it, so a new VM runs them again", () => {
    for (const step of inScenario("std").filter((r) => r.type === NODE_STEP)) {
      for (const target of step.inputs.targets as Target[]) {
        expect(target.instance).toBe(`std-vm-${target.node}-instance`);
        expect(target.hostKey).toMatch(/^ssh-ed25519 AAAA/);
      }
    }
  });

  it("probes the API through the VIP only after ldirectord and the API servers", () => {
    const health = named("std-api-health");
    expect(health.dependencies).toEqual(
      expect.arrayContaining([
        named("std-api-ldirectord").urn,
        named("std-control-kube-apiserver").urn,
      ]),
    );
    // Its status asks the API, so an up after a host reboot waits for it again.
    expect(health.inputs.watch).toBe(true);
  });
});

describe("stages", () => {
  it("stops after the control plane with no runtime, kubelet, kube-proxy or route", () => {
    const names = inScenario("cp")
      .filter((r) => STEP_TYPES.has(r.type))
      .map((r) => r.name);
    expect(names).toContain("cp-control-kube-apiserver");
    expect(names).toContain("cp-api-health");
    expect(names.filter((n) => /runtime|kubelet|kube-proxy|routes/.test(n))).toEqual([]);
  });
});

describe("runtime and CNI choices", () => {
  it("names each runtime's step after it, and the kubelet talks to the CRI-O socket with cri-o", () => {
    const crio = inScenario("crio");
    expect(crio.filter((r) => /containerd|runc/.test(r.name))).toEqual([]);
    const step = named("crio-runtime-worker0-cri-o");
    expect(argv(step, "apply").slice(0, 5)).toEqual([
      "bash",
      "node-step.sh",
      "apply",
      "--step",
      "cri-o",
    ]);
    expect(argv(named("std-runtime-worker0-containerd"), "apply")[4]).toBe("containerd");
    const config = bundle(named("crio-kubelet-worker0"), "worker0").find(
      (f) => f.path === "/var/lib/kubelet/config.yaml",
    );
    expect(config?.content).toContain("containerRuntimeEndpoint: unix:///var/run/crio/crio.sock");
  });

  it("registers no kube-proxy, bridge CNI or host routes with cilium", () => {
    const names = inScenario("cil")
      .filter((r) => STEP_TYPES.has(r.type))
      .map((r) => r.name);
    expect(names.filter((n) => /kube-proxy|-cni$|routes/.test(n))).toEqual([]);
    expect(inScenario("std").some((r) => r.name === "std-kube-proxy-worker2")).toBe(true);
    expect(inScenario("std").some((r) => r.name === "std-runtime-worker2-cni")).toBe(true);
    expect(inScenario("std").some((r) => r.name === "std-routes-control1")).toBe(true);
  });
});

describe("downloads", () => {
  it("fetches each artifact once on the host, for the configured arch, held by the stack", () => {
    for (const [prefix, arch, other] of [
      ["std", "amd64", "arm64"],
      ["crio", "arm64", "amd64"],
    ] as const) {
      const fetches = inScenario(prefix).filter(
        (r) => r.type === ENSURED && r.name.startsWith(`${prefix}-artifacts-`),
      );
      expect(fetches.length).toBeGreaterThan(5);
      for (const fetch of fetches) {
        const args = fetch.inputs.args as string[];
        expect(fetch.inputs.script).toBe("artifacts/fetch.sh");
        expect(args[args.indexOf("--url") + 1]).toContain(arch);
        expect(args[args.indexOf("--url") + 1]).not.toContain(other);
        expect(args[args.indexOf("--holder") + 1]).toBe("hardway-test");
      }
    }
  });

  it("never downloads on a VM: no step runs curl or wget there", () => {
    const steps = resources.filter((r) => r.type === NODE_STEP);
    expect(steps.length).toBeGreaterThan(40);
    for (const r of steps) {
      expect(JSON.stringify([r.inputs.apply, r.inputs.remove])).not.toMatch(/\b(curl|wget)\b/);
    }
  });

  it("uploads each release file from the host cache to the nodes whose step needs it", () => {
    const etcd = named("std-etcd-members");
    expect(etcd.inputs.uploads).toEqual([
      {
        localPath: "/cache/etcd/3.6.16/amd64/etcd-v3.6.16-linux-amd64.tar.gz",
        remotePath:
          "/home/ubuntu/.cache/hardway/artifacts/etcd/3.6.16/amd64/etcd-v3.6.16-linux-amd64.tar.gz",
      },
    ]);
    const kubelet = named("std-kubelet-worker1");
    expect((kubelet.inputs.uploads as { localPath: string }[]).map((u) => u.localPath)).toEqual([
      "/cache/kubelet/1.36.5/amd64/kubelet",
    ]);
  });
});

describe("secrets", () => {
  it("keep every key off command lines: only the bundles carry them, as secrets", () => {
    for (const r of resources.filter((x) => STEP_TYPES.has(x.type))) {
      expect(JSON.stringify([r.inputs.apply, r.inputs.remove, r.inputs.args])).not.toContain(
        "PRIVATE KEY",
      );
    }
    const etcd = named("std-etcd-members");
    expect(etcd.secretInputs).toEqual(expect.arrayContaining(["bundles", "privateKey"]));
    const key = bundle(etcd, "control1").find(
      (f) => f.path === "/etc/kubernetes/pki/etcd/peer.key",
    );
    expect(key?.content).toContain("PRIVATE KEY");
    expect(key?.mode).toBe("0600");
  });
});

describe("delete", () => {
  it("removes what each step installed, and wipes state only for etcd and the kubelet", () => {
    const withState = new Map<string, string[]>();
    for (const r of inScenario("std").filter((x) => x.type === NODE_STEP)) {
      const remove = argv(r, "remove");
      expect(remove.slice(0, 3)).toEqual(["bash", "node-step.sh", "remove"]);
      const dirs = remove.flatMap((a, i) => (remove[i - 1] === "--state-dir" ? [a] : []));
      if (dirs.length > 0) {
        withState.set(r.name.replace(/-(control|worker)\d$/, ""), dirs);
      }
    }
    expect(Object.fromEntries(withState)).toEqual({
      "std-etcd-members": ["/var/lib/etcd"],
      "std-kubelet": ["/var/lib/kubelet"],
    });
  });
});

describe("the longest chain of steps", () => {
  it("runs fetch, etcd, the API servers, the API probe: no longer than 8 steps", () => {
    const std = inScenario("std");
    const chain = longestChain(std, (r) => STEP_TYPES.has(r.type));
    const names = chain.map((r) => r.name);
    // Printed so the report and a reviewer see the critical path of a default `pulumi up`.
    console.log(`longest chain (${names.length} steps):\n  ${names.join("\n  ")}`);
    expect(names).toEqual(
      expect.arrayContaining(["std-etcd-members", "std-control-kube-apiserver", "std-api-health"]),
    );
    expect(names.length).toBeLessThanOrEqual(8);
  });
});
