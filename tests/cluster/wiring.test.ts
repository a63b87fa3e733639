import * as pulumi from "@pulumi/pulumi";
import { parseFileBundle } from "../../components/cluster/remoteFiles";
import { longestChain } from "../../components/cluster/graph";
import { RecordedResource, installMocks } from "../harness/mocks";
import { buildScenario, settled } from "./fixtures";

const REMOTE = "command:remote:Command";
const COPY = "command:remote:CopyToRemote";
const LOCAL = "command:local:Command";
const STEP_TYPES = new Set([REMOTE, COPY, LOCAL]);

let resources: RecordedResource[];

beforeAll(async () => {
  resources = await installMocks(pulumi);
  await buildScenario(pulumi, { prefix: "std", raw: {} });
  await buildScenario(pulumi, {
    prefix: "crio",
    raw: { containerRuntime: "cri-o", arch: "arm64" },
  });
  await buildScenario(pulumi, { prefix: "cil", raw: { cni: "cilium" } });
  await settled(resources);
});

const inScenario = (prefix: string) => resources.filter((r) => r.name.startsWith(`${prefix}-`));
/** The remote or local command of that name (copies are named `…-copy-<artifact>`). */
const named = (name: string) => {
  const found = resources.find((r) => r.name === name && r.type !== COPY);
  if (found === undefined) {
    throw new Error(`no resource ${name}`);
  }
  return found;
};
const commandText = (r: RecordedResource) =>
  [r.inputs.create, r.inputs.update, r.inputs.delete]
    .filter((c) => typeof c === "string")
    .join("\n");

describe("ordering", () => {
  it("starts every API server only after the etcd health probe", () => {
    const health = named("std-etcd-health");
    for (const node of ["control0", "control1", "control2"]) {
      expect(named(`std-control-${node}-kube-apiserver`).dependencies).toContain(health.urn);
    }
  });

  it("probes etcd only after every member step", () => {
    const deps = named("std-etcd-health").dependencies;
    for (const node of ["control0", "control1", "control2"]) {
      expect(deps).toContain(named(`std-etcd-${node}`).urn);
    }
  });

  it("starts each kubelet after its own runtime and the API health probe, not other nodes' runtimes", () => {
    const apiHealth = named("std-api-health").urn;
    for (const node of ["control0", "worker0", "worker2"]) {
      const deps = named(`std-kubelet-${node}`).dependencies;
      expect(deps).toEqual(
        expect.arrayContaining([named(`std-runtime-${node}-containerd`).urn, apiHealth]),
      );
      expect(deps).not.toContain(
        named(`std-runtime-${node === "worker0" ? "worker1" : "worker0"}-containerd`).urn,
      );
    }
  });

  it("keeps each etcd member independent of the others", () => {
    const members = ["control0", "control1", "control2"].map((n) => named(`std-etcd-${n}`).urn);
    for (const urn of members) {
      const r = resources.find((x) => x.urn === urn) as RecordedResource;
      expect(r.dependencies.filter((d) => members.includes(d))).toEqual([]);
    }
  });

  it("makes every remote step wait for its VM", () => {
    const vm = named("std-vm-worker1").urn;
    const copy = resources.find((r) => r.name === "std-scripts-worker1-node-step");
    expect(copy?.dependencies).toContain(vm);
    expect(
      resources.find((r) => r.name === "std-kubelet-worker1-copy-kubelet")?.dependencies,
    ).toContain(copy?.urn);
  });
});

describe("runtime and CNI choices", () => {
  it("registers no containerd step with cri-o, and the kubelet talks to the CRI-O socket", () => {
    const crio = inScenario("crio");
    expect(crio.filter((r) => /containerd|runc/.test(r.name))).toEqual([]);
    expect(crio.some((r) => r.name === "crio-runtime-worker0-cri-o")).toBe(true);
    const files = parseFileBundle(named("crio-kubelet-worker0").inputs.stdin as string);
    const config = files.find((f) => f.path === "/var/lib/kubelet/config.yaml");
    expect(config?.content).toContain("containerRuntimeEndpoint: unix:///var/run/crio/crio.sock");
  });

  it("registers no kube-proxy, bridge CNI or host routes with cilium", () => {
    const names = inScenario("cil")
      .filter((r) => STEP_TYPES.has(r.type))
      .map((r) => r.name);
    expect(names.filter((n) => /kube-proxy|-cni$|routes/.test(n))).toEqual([]);
    expect(names.filter((n) => /kube-proxy|-cni$|routes/.test(n) && n.startsWith("std-"))).toEqual(
      [],
    );
    expect(inScenario("std").some((r) => r.name === "std-kube-proxy-worker2")).toBe(true);
    expect(inScenario("std").some((r) => r.name === "std-runtime-worker2-cni")).toBe(true);
    expect(inScenario("std").some((r) => r.name === "std-routes-control1")).toBe(true);
  });
});

describe("downloads", () => {
  it("fetches each artifact once on the host, for the configured arch", () => {
    for (const [prefix, arch, other] of [
      ["std", "amd64", "arm64"],
      ["crio", "arm64", "amd64"],
    ] as const) {
      const fetches = inScenario(prefix).filter(
        (r) => r.type === LOCAL && r.name.startsWith(`${prefix}-artifacts-`),
      );
      expect(fetches.length).toBeGreaterThan(5);
      for (const fetch of fetches) {
        const url = /--url (\S+)/.exec(fetch.inputs.create as string)?.[1] ?? "";
        expect(url).toContain(arch);
        expect(url).not.toContain(other);
      }
    }
  });

  it("never downloads on a VM: remote commands use neither curl nor wget", () => {
    const remote = resources.filter((r) => r.type === REMOTE);
    expect(remote.length).toBeGreaterThan(40);
    for (const r of remote) {
      expect(commandText(r)).not.toMatch(/\b(curl|wget)\b/);
    }
  });

  it("copies each release file to exactly the nodes whose role needs it", () => {
    const copies = inScenario("std").filter(
      (r) => r.type === COPY && r.name.endsWith("-copy-etcd"),
    );
    expect(copies.map((c) => c.name).sort()).toEqual([
      "std-etcd-control0-copy-etcd",
      "std-etcd-control1-copy-etcd",
      "std-etcd-control2-copy-etcd",
    ]);
  });
});

describe("secrets", () => {
  it("keep every key off command lines: only stdin carries them, as a secret", () => {
    for (const r of resources.filter((x) => x.type === REMOTE || x.type === LOCAL)) {
      expect(commandText(r)).not.toContain("PRIVATE KEY");
      expect(JSON.stringify(r.inputs.triggers ?? [])).not.toContain("PRIVATE KEY");
    }
    const etcd = named("std-etcd-control1");
    expect(etcd.secretInputs).toContain("stdin");
    const files = parseFileBundle(etcd.inputs.stdin as string);
    expect(files.find((f) => f.path === "/etc/kubernetes/pki/etcd/peer.key")?.content).toContain(
      "PRIVATE KEY",
    );
    expect(files.find((f) => f.path === "/etc/kubernetes/pki/etcd/peer.key")?.mode).toBe("0600");
  });

  it("pass the SSH key only inside the connection, as a secret", () => {
    const step = named("std-kubelet-worker0");
    expect(step.secretInputs.some((p) => p.startsWith("connection"))).toBe(true);
  });
});

describe("delete", () => {
  it("gives every installing step a delete that removes what it installed", () => {
    for (const r of resources.filter((x) => x.type === REMOTE && !x.name.endsWith("-health"))) {
      expect(r.inputs.delete).toMatch(/node-step\.sh remove --step /);
      expect(r.inputs.update).toBe(r.inputs.create);
    }
    for (const r of resources.filter((x) => x.type === LOCAL && !x.name.endsWith("-health"))) {
      expect(typeof r.inputs.delete).toBe("string");
    }
  });
});

describe("the longest chain of steps", () => {
  it("runs through etcd, its health, the API server, the API health and a kubelet", () => {
    const std = inScenario("std");
    const chain = longestChain(std, (r) => STEP_TYPES.has(r.type));
    const names = chain.map((r) => r.name);
    // Printed so the report and a reviewer see the critical path of a default `pulumi up`.
    console.log(`longest chain (${names.length} steps):\n  ${names.join("\n  ")}`);
    const order = ["std-etcd-health", "std-api-health"].map((n) => names.indexOf(n));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order[0]).toBeLessThan(order[1]);
    expect(names[names.length - 1]).toMatch(/^std-kubelet-/);
    expect(names.some((n) => /^std-control-control\d-kube-apiserver$/.test(n))).toBe(true);
  });
});
