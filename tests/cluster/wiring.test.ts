/**
 * The cluster's steps as KubernetesCluster wires them, under mocks: what waits for what (the
 * order an upgrade follows, for 1, 3 and 5 control planes), what each step installs and removes,
 * which release files go to which VM, where secrets travel, and the longest chain of steps.
 */
import * as pulumi from "@pulumi/pulumi";
import { defaultVersions } from "../../components/config/defaults";
import { longestChain } from "../../components/cluster/graph";
import { parseFileBundle } from "../../components/cluster/remoteFiles";
import {
  API_START_TIMEOUT_SECONDS,
  EMULATED_API_START_TIMEOUT_SECONDS,
} from "../../components/kubernetes/controlPlane";
import { RecordedResource, installMocks } from "../harness/mocks";
import { buildScenario, settled } from "./fixtures";

const NODE_STEP = "pulumi-nodejs:dynamic/cluster:NodeStep";
const NODE_RELEASES = "pulumi-nodejs:dynamic/cluster:NodeReleases";
const NODE_DRAIN = "pulumi-nodejs:dynamic/cluster:NodeDrain";
const ENSURED = "pulumi-nodejs:dynamic/host:EnsuredScript";
const STEP_TYPES = new Set([NODE_STEP, ENSURED, NODE_RELEASES, NODE_DRAIN]);

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
  await buildScenario(pulumi, { prefix: "one", raw: { controlPlanes: 1, workers: 1 } });
  await buildScenario(pulumi, { prefix: "five", raw: { controlPlanes: 5, workers: 2 } });
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

const byUrn = () => new Map(resources.map((r) => [r.urn, r]));
/** Whether `later` waits for `earlier`, directly or through any chain of dependencies. */
const waitsFor = (later: RecordedResource, earlier: RecordedResource) => {
  const all = byUrn();
  const seen = new Set<string>();
  const stack = [...later.dependencies];
  while (stack.length > 0) {
    const urn = stack.pop() as string;
    if (urn === earlier.urn) {
      return true;
    }
    if (!seen.has(urn)) {
      seen.add(urn);
      stack.push(...(all.get(urn)?.dependencies ?? []));
    }
  }
  return false;
};
/** The chains of steps an upgrade runs one after another, as the version-skew policy asks. */
const skewChains = (prefix: string, controls: number, workers: number) => {
  const c = Array.from({ length: controls }, (_, i) => `control${i}`);
  const w = Array.from({ length: workers }, (_, i) => `worker${i}`);
  const api = [`${prefix}-etcd-members`, `${prefix}-control-kube-apiserver`];
  return {
    controllerManagers: [...api, ...c.map((n) => `${prefix}-control-${n}-kube-controller-manager`)],
    schedulers: [...api, ...c.map((n) => `${prefix}-control-${n}-kube-scheduler`)],
    kubelets: [
      ...api,
      ...[...c, ...w].flatMap((n) => [
        `${prefix}-drains-${n}-drain`,
        `${prefix}-kubelet-${n}`,
        `${prefix}-drains-${n}-uncordon`,
      ]),
    ],
    kubeProxies: [...c, ...w].flatMap((n) => [
      `${prefix}-drains-${n}-drain`,
      `${prefix}-kube-proxy-${n}`,
      `${prefix}-drains-${n}-uncordon`,
    ]),
    runtimes: [...c, ...w].flatMap((n) => [
      `${prefix}-runtime-${n}-containerd`,
      `${prefix}-kubelet-${n}`,
    ]),
  };
};

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
      // The planned members, and the scripts that read them below: only when a member starts
      // (or leaves), so another number of members restarts none of those that stay.
      "/etc/etcd/members",
      "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
      "/etc/kubernetes/pki/etcd/healthcheck-client.key",
      "/etc/kubernetes/pki/etcd/peer.crt",
      "/etc/kubernetes/pki/etcd/peer.key",
      "/etc/kubernetes/pki/etcd/server.crt",
      "/etc/kubernetes/pki/etcd/server.key",
      "/usr/local/lib/hardway/etcd-join.sh",
      "/usr/local/lib/hardway/etcd-member.sh",
    ]);
    expect(etcd.inputs.finalCheck).toEqual(expect.arrayContaining(["--scope", "cluster"]));
    // A member that leaves a cluster that stays is taken out of it first.
    expect((etcd.inputs.beforeLeave as string[]).slice(0, 3)).toEqual([
      "bash",
      "/usr/local/lib/hardway/etcd-member.sh",
      "leave",
    ]);
    const files = bundle(etcd, "control0").map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining(["/etc/etcd/members", "/usr/local/lib/hardway/etcd-member.sh"]),
    );
  });

  it("gives etcd Raft timing for slow members only when the VMs are emulated", () => {
    const unit = (prefix: string) =>
      bundle(named(`${prefix}-etcd-members`), "control1").find(
        (f) => f.path === "/etc/systemd/system/etcd.service",
      )?.content ?? "";
    expect(unit("std")).toContain(
      "ExecStartPre=/bin/bash \\\n  /usr/local/lib/hardway/etcd-join.sh",
    );
    expect(unit("std")).not.toContain("--heartbeat-interval");
    expect(unit("crio")).toContain("--heartbeat-interval=500");
    expect(unit("crio")).toContain("--election-timeout=5000");
  });

  it("gives the API servers, their etcd checks and ldirectord longer timeouts only when the VMs are emulated", () => {
    const unit = (prefix: string) =>
      bundle(named(`${prefix}-control-kube-apiserver`), "control0").find(
        (f) => f.path === "/etc/systemd/system/kube-apiserver.service",
      )?.content ?? "";
    expect(unit("std")).toContain("--secure-port=6443");
    expect(unit("std")).not.toContain("--request-timeout");
    expect(unit("crio")).toContain("--request-timeout=300s");
    // etcd's answer to /readyz's check may take longer than 2 s on a loaded emulated guest.
    expect(unit("std")).not.toContain("--etcd-readycheck-timeout");
    expect(unit("crio")).toContain("--etcd-readycheck-timeout=10s");
    expect(unit("crio")).toContain("--etcd-healthcheck-timeout=10s");
    const ldirectord = (prefix: string) =>
      bundle(named(`${prefix}-api-ldirectord`), "gateway").find(
        (f) => f.path === "/etc/ha.d/ldirectord.cf",
      )?.content ?? "";
    expect(ldirectord("std")).toContain("checktimeout=3\n");
    expect(ldirectord("crio")).toContain("checktimeout=20\n");
    // Each check costs an emulated gateway CPU the control nodes need: fewer of them.
    expect(ldirectord("std")).toContain("checkinterval=1\n");
    expect(ldirectord("crio")).toContain("checkinterval=4\n");
  });

  it("gives an emulated API server longer to be ready after a start, and its step the time to wait", () => {
    const attempts = (prefix: string) => {
      const readiness = named(`${prefix}-control-kube-apiserver`).inputs.readiness as string[];
      return Number(readiness[readiness.indexOf("--attempts") + 1]);
    };
    expect(attempts("std")).toBe(API_START_TIMEOUT_SECONDS / 5);
    expect(attempts("crio")).toBe(EMULATED_API_START_TIMEOUT_SECONDS / 5);
    expect(named("std-control-kube-apiserver").inputs.timeoutSeconds).toBe(1800);
    expect(named("crio-control-kube-apiserver").inputs.timeoutSeconds).toBeGreaterThanOrEqual(
      2 * EMULATED_API_START_TIMEOUT_SECONDS,
    );
  });

  it("gives the controller managers and schedulers long leader leases only when the VMs are emulated", () => {
    const manager = (prefix: string) =>
      bundle(named(`${prefix}-control-control0-kube-controller-manager`), "control0").find(
        (f) => f.path === "/etc/systemd/system/kube-controller-manager.service",
      )?.content ?? "";
    const scheduler = (prefix: string) =>
      bundle(named(`${prefix}-control-control0-kube-scheduler`), "control0").find(
        (f) => f.path === "/etc/kubernetes/kube-scheduler.yaml",
      )?.content ?? "";
    expect(manager("std")).not.toContain("--leader-elect-renew-deadline");
    expect(manager("crio")).toContain("--leader-elect-renew-deadline=120s");
    expect(scheduler("std")).not.toContain("renewDeadline");
    expect(scheduler("crio")).toContain("renewDeadline: 120s");
    // One control plane: nobody to hand over to, so no lease to lose.
    expect(manager("one")).toContain("--leader-elect=false");
    expect(scheduler("one")).toContain("leaderElect: false");
  });

  it("creates the first API server alone, so it writes the cluster's bootstrap objects without a race", () => {
    expect(named("std-control-kube-apiserver").inputs.firstAlone).toBe(true);
    expect(named("five-control-kube-apiserver").inputs.firstAlone).toBe(true);
    // One control node: nothing to order, and its step's state stays as it was.
    expect(named("one-control-kube-apiserver").inputs).not.toHaveProperty("firstAlone");
    expect(named("std-etcd-members").inputs).not.toHaveProperty("firstAlone");
  });

  it("starts the API servers, one step rolling over the control nodes, only after etcd", () => {
    const api = named("std-control-kube-apiserver");
    expect(targets(api)).toEqual(["control0", "control1", "control2"]);
    expect(api.dependencies).toContain(named("std-etcd-members").urn);
    expect(api.inputs.readiness).toEqual(expect.arrayContaining(["api-ready.sh"]));
    // Its unit has no start timeout; a first start returns at once and api-ready.sh waits.
    expect(argv(api, "apply")).toEqual(
      expect.arrayContaining(["--start-no-block", "kube-apiserver.service"]),
    );
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

  it("starts each kubelet right after its own runtime, CNI config and drain, not waiting for the API probe", () => {
    const apiHealth = named("std-api-health").urn;
    for (const node of ["control0", "worker0", "worker2"]) {
      const deps = named(`std-kubelet-${node}`).dependencies;
      const steps = resources.filter((r) => r.type === NODE_STEP || r.type === NODE_DRAIN);
      expect(deps.filter((urn) => steps.some((r) => r.urn === urn)).sort()).toEqual(
        [
          named(`std-runtime-${node}-containerd`).urn,
          named(`std-runtime-${node}-cni`).urn,
          named(`std-drains-${node}-drain`).urn,
        ].sort(),
      );
      expect(deps).not.toContain(apiHealth);
    }
  });

  it.each([
    ["one", 1, 1],
    ["std", 3, 3],
    ["five", 5, 2],
  ] as const)(
    "%s: etcd, API servers, then controller managers, schedulers and node by node drain, kubelet and kube-proxy, uncordon",
    (prefix, controls, workers) => {
      const chains = skewChains(prefix, controls, workers);
      for (const [chain, names] of Object.entries(chains)) {
        const order = names.map(named);
        // A runtime is followed by its kubelet only; the other chains are one line each.
        const step = chain === "runtimes" ? 2 : 1;
        for (let i = 1; i < order.length; i += step) {
          const pair = `${chain}: ${order[i].name} waits for ${order[i - 1].name}`;
          expect(`${pair}: ${waitsFor(order[i], order[i - 1])}`).toBe(`${pair}: true`);
        }
      }
      // What the policy does not ask for is not waited for: a runtime waits for no API server,
      // the API servers for no node, the controller managers for no scheduler.
      const api = named(`${prefix}-control-kube-apiserver`);
      expect(waitsFor(named(`${prefix}-runtime-control0-containerd`), api)).toBe(false);
      expect(waitsFor(api, named(`${prefix}-kubelet-control0`))).toBe(false);
      expect(
        waitsFor(
          named(`${prefix}-control-control0-kube-controller-manager`),
          named(`${prefix}-control-control0-kube-scheduler`),
        ),
      ).toBe(false);
    },
  );

  it("records the release of etcd and the API servers, for the preview's minor checks", () => {
    expect(named("std-etcd-members").inputs.release).toEqual({
      software: "etcd",
      version: defaultVersions.etcd,
    });
    expect(named("std-control-kube-apiserver").inputs.release).toEqual({
      software: "Kubernetes",
      version: defaultVersions.kubernetes,
    });
  });

  it("drains a node when the Kubernetes minor or the runtime changes, with kubectl on control0", () => {
    for (const node of ["control1", "worker2"]) {
      for (const verb of ["drain", "uncordon"]) {
        const drain = named(`std-drains-${node}-${verb}`);
        expect(drain.inputs.verb).toBe(verb);
        expect(drain.inputs.node).toBe(node);
        expect(drain.inputs.disruption).toEqual({
          kubernetes: defaultVersions.kubernetes.split(".").slice(0, 2).join("."),
          runtime: "containerd",
        });
        expect((drain.inputs.via as { host: string }).host).toBe("192.168.234.11");
        expect(drain.secretInputs).toContain("via");
      }
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

  it("gives the API probe what it needs to say why the VIP failed: every server, the gateway", () => {
    const health = named("five-api-health");
    const args = health.inputs.args as string[];
    const servers = args.filter((_, i) => args[i - 1] === "--server");
    expect(servers).toEqual([11, 12, 13, 14, 15].map((h) => `https://192.168.234.${h}:6443`));
    expect(args[args.indexOf("--gateway") + 1]).toBe("ubuntu@192.168.234.10");
    // The key travels on stdin, a secret, with the gateway's pinned host key after the CA.
    expect(health.secretInputs).toContain("stdin");
    const stdin = health.inputs.stdin as string;
    expect(stdin).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(stdin).toContain("-----BEGIN OPENSSH PRIVATE KEY-----");
    expect(stdin).toMatch(/\n192\.168\.234\.10 ssh-ed25519 AAAA\S+\n$/);
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

  it("copies each VM's release files once, before its steps, which then upload none", () => {
    const files = (node: string) =>
      (
        named(`std-releases-${node}`).inputs.files as { localPath: string; remotePath: string }[]
      ).map((f) => f.localPath);
    const k8s = (name: string) => `/cache/${name}/${defaultVersions.kubernetes}/amd64/${name}`;
    expect(files("worker1")).not.toContain(k8s("kube-apiserver"));
    expect(files("worker1")).toContain(k8s("kubelet"));
    expect(files("control0")).toEqual(
      expect.arrayContaining([k8s("kube-apiserver"), k8s("kubelet"), k8s("kubectl")]),
    );
    expect(files("control0")).toContain(
      `/cache/etcd/${defaultVersions.etcd}/amd64/etcd-v${defaultVersions.etcd}-linux-amd64.tar.gz`,
    );
    expect(inScenario("std").some((r) => r.name === "std-releases-gateway")).toBe(false);
    // A stack that stops after the control plane copies no kubelet.
    expect(
      (named("cp-releases-control0").inputs.files as { localPath: string }[]).map(
        (f) => f.localPath,
      ),
    ).not.toContain(k8s("kubelet"));
    for (const prefix of ["std", "crio", "cil", "cp"]) {
      for (const step of inScenario(prefix).filter((r) => r.type === NODE_STEP)) {
        const apply = argv(step, "apply");
        const staged = apply.flatMap((w, i) => (apply[i - 2] === "--binary" ? [w] : []));
        expect(`${step.name}: ${JSON.stringify(step.inputs.uploads)}`).toBe(
          `${step.name}: ${step.name.includes("-images-") ? JSON.stringify(step.inputs.uploads) : "[]"}`,
        );
        for (const node of staged.length > 0 ? targets(step) : []) {
          // Every binary a step installs is among the files its VM got first.
          const releases = named(`${prefix}-releases-${node}`);
          const copied = (releases.inputs.files as { remotePath: string }[]).map(
            (f) => f.remotePath,
          );
          expect(staged.filter((path) => !copied.includes(path))).toEqual([]);
          expect(waitsFor(step, releases)).toBe(true);
        }
      }
    }
  });
});

describe("the release copies", () => {
  it("go to the control nodes one after another and to the workers at once", () => {
    const releases = (prefix: string, node: string) => named(`${prefix}-releases-${node}`);
    for (const [prefix, controls, workers] of [
      ["std", 3, 3],
      ["five", 5, 2],
      ["one", 1, 1],
    ] as const) {
      const c = Array.from({ length: controls }, (_, i) => releases(prefix, `control${i}`));
      const w = Array.from({ length: workers }, (_, i) => releases(prefix, `worker${i}`));
      c.slice(1).forEach((r, i) => expect(waitsFor(r, c[i])).toBe(true));
      c.slice(0, -1).forEach((r, i) => expect(waitsFor(r, c[i + 1])).toBe(false));
      for (const r of w) {
        expect([...c, ...w].filter((other) => waitsFor(r, other))).toEqual([]);
      }
      // The steps that roll over every control node start after the last copy.
      for (const step of [`${prefix}-etcd-members`, `${prefix}-control-kube-apiserver`]) {
        expect(waitsFor(named(step), c[c.length - 1])).toBe(true);
      }
    }
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
  it("is the upgrade's node-by-node line, after the fetch, the copy, etcd and the API servers", () => {
    const std = inScenario("std");
    const chain = longestChain(std, (r) => STEP_TYPES.has(r.type));
    const names = chain.map((r) => r.name);
    // Printed so the report and a reviewer see the critical path of a default `pulumi up`.
    console.log(`longest chain (${names.length} steps):\n  ${names.join("\n  ")}`);
    expect(names[0]).toMatch(/^std-artifacts-/);
    const drains = names.filter((n) => n.startsWith("std-drains-"));
    expect(names.slice(1, 6)).toEqual([
      "std-releases-control0",
      "std-releases-control1",
      "std-releases-control2",
      "std-etcd-members",
      "std-control-kube-apiserver",
    ]);
    expect(drains).toEqual(
      ["control0", "control1", "control2", "worker0", "worker1", "worker2"].flatMap((n) => [
        `std-drains-${n}-drain`,
        `std-drains-${n}-uncordon`,
      ]),
    );
    expect(names).toHaveLength(6 + 6 * 3);
  });
});
