/**
 * Changing a live cluster's node count, under mocks: the program runs once as the stack's state,
 * then again with another `hardway:workers` or `hardway:controlPlanes`, unchanged resources
 * keeping their outputs (keys,
 * certificates) as the engine keeps them. What differs is what `pulumi preview` would show:
 * creations, deletions, and the inputs each update changes.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { NodeStepState, nodeStepProvider } from "../components/cluster/nodeStep";
import { RecordedResource, byType, runProgram } from "./harness/mocks";

interface Changes {
  readonly created: string[];
  readonly deleted: string[];
  /** Resource name → the inputs that changed. */
  readonly updated: Record<string, string[]>;
}

/** What a second run changes against the first, by resource name. */
function changes(before: readonly RecordedResource[], after: readonly RecordedResource[]): Changes {
  const key = (r: RecordedResource) => `${r.type}::${r.name}`;
  const old = new Map(before.map((r) => [key(r), r]));
  const now = new Set(after.map(key));
  const updated: Record<string, string[]> = {};
  const created: string[] = [];
  for (const resource of after) {
    const was = old.get(key(resource));
    if (was === undefined) {
      created.push(resource.name);
      continue;
    }
    const fields = [...new Set([...Object.keys(was.inputs), ...Object.keys(resource.inputs)])];
    const changed = fields.filter((f) => !isDeepStrictEqual(was.inputs[f], resource.inputs[f]));
    if (changed.length > 0) {
      updated[resource.name] = changed;
    }
  }
  const deleted = before.filter((r) => !now.has(key(r))).map((r) => r.name);
  return { created, deleted, updated };
}

// The e2e's small cluster: one control plane, emulated, through the nodes.
const SMALL = {
  "hardway:controlPlanes": "1",
  "hardway:accelerator": "tcg",
  "hardway:stopAfter": "nodes",
};

describe("changing the number of workers of a live cluster", () => {
  // One life: a worker, then two, then one again, each run on the state of the one before.
  let one: RecordedResource[];
  let two: RecordedResource[];
  let oneAgain: RecordedResource[];
  beforeAll(async () => {
    one = [...(await runProgram({ ...SMALL, "hardway:workers": "1" })).resources];
    const grown = await runProgram({ ...SMALL, "hardway:workers": "2" }, { prior: one });
    two = [...grown.resources];
    const shrunk = await runProgram({ ...SMALL, "hardway:workers": "1" }, { prior: two });
    oneAgain = [...shrunk.resources];
  }, 300_000);

  it("adds a worker: its own resources, and on the host only dnsmasq's leases and names", () => {
    const { created, deleted, updated } = changes(one, two);
    expect(deleted).toEqual([]);
    // The dnsmasq config is the one file that lists every node; its change restarts dnsmasq on
    // the host (leases are static, so no VM's address moves), no daemon on a VM.
    expect(updated).toEqual({ "host-linux": ["stdin"] });
    expect(created.filter((name) => !name.includes("worker1"))).toEqual([]);
    expect(created.sort()).toEqual(
      [
        "k8s-drains-worker1-drain",
        "k8s-drains-worker1-uncordon",
        "k8s-kube-proxy-worker1",
        "k8s-kubelet-worker1",
        "k8s-releases-worker1",
        "k8s-routes-worker1",
        "k8s-runtime-worker1-cni",
        "k8s-runtime-worker1-containerd",
        "pki-kubelet-worker1",
        "pki-kubelet-worker1-key",
        "pki-worker1-host-key",
        "vm-worker1",
        "vm-worker1-qemu",
      ].sort(),
    );
  });

  it("removes a worker: exactly what adding it made, and the same dnsmasq change back", () => {
    const { created, deleted, updated } = changes(two, oneAgain);
    expect(created).toEqual([]);
    expect(updated).toEqual({ "host-linux": ["stdin"] });
    expect(deleted.sort()).toEqual(changes(one, two).created.sort());
    // Back where it started: every resource as it was.
    expect(changes(one, oneAgain)).toEqual({ created: [], deleted: [], updated: {} });
  });

  it("with the cluster services too, touches no release or object of the running cluster", async () => {
    const three = await runProgram({ "hardway:accelerator": "tcg" });
    const four = await runProgram(
      { "hardway:accelerator": "tcg", "hardway:workers": "4" },
      { prior: three.resources },
    );
    const { deleted, updated } = changes(three.resources, four.resources);
    expect(deleted).toEqual([]);
    expect(updated).toEqual({ "host-linux": ["stdin"] });
  });

  it("drains a leaving node through the API, except when the cluster's data goes too (destroy)", () => {
    const etcd = one.find((r) => r.name === "k8s-etcd-members");
    const drains = byType(one, "pulumi-nodejs:dynamic/cluster:NodeDrain");
    expect(drains.map((d) => d.name).sort()).toEqual([
      "k8s-drains-control0-drain",
      "k8s-drains-control0-uncordon",
      "k8s-drains-worker0-drain",
      "k8s-drains-worker0-uncordon",
    ]);
    for (const drain of drains) {
      expect(drain.deletedWith).toBe(etcd?.urn);
    }
    // Deleted in reverse: the uncordon (drain) before the node's kubelet, the Node object after.
    const kubelet = one.find((r) => r.name === "k8s-kubelet-worker0");
    const drain = drains.find((d) => d.name === "k8s-drains-worker0-drain");
    const uncordon = drains.find((d) => d.name === "k8s-drains-worker0-uncordon");
    expect(kubelet?.dependencies).toContain(drain?.urn);
    expect(uncordon?.dependencies).toContain(kubelet?.urn);
  });

  it("on destroy, deletes the VMs without first undoing each step on them; a leaving node's steps are undone", () => {
    const host = one.find((r) => r.type === "hardway:host:HostNetwork");
    expect(host).toBeDefined();
    const onVms = [
      ...byType(one, "pulumi-nodejs:dynamic/cluster:NodeStep"),
      ...byType(one, "pulumi-nodejs:dynamic/cluster:NodeReleases"),
    ];
    expect(onVms.map((r) => r.name).sort()).toEqual(
      [
        "k8s-api-ldirectord",
        "k8s-control-control0-kube-controller-manager",
        "k8s-control-control0-kube-scheduler",
        "k8s-control-kube-apiserver",
        "k8s-etcd-members",
        ...["control0", "worker0"].flatMap((node) => [
          `k8s-kube-proxy-${node}`,
          `k8s-kubelet-${node}`,
          `k8s-releases-${node}`,
          `k8s-runtime-${node}-cni`,
          `k8s-runtime-${node}-containerd`,
        ]),
      ].sort(),
    );
    for (const step of onVms) {
      expect({ step: step.name, deletedWith: step.deletedWith }).toEqual({
        step: step.name,
        deletedWith: host?.urn,
      });
    }
    // What lives on the host is deleted on its own: the VMs (their QEMU, disk and tap), the
    // host's pod routes, the release cache's hold.
    for (const onHost of byType(one, "pulumi-nodejs:dynamic/host:EnsuredScript")) {
      expect({ script: onHost.name, deletedWith: onHost.deletedWith }).toEqual({
        script: onHost.name,
        deletedWith: undefined,
      });
    }
    // Removing a worker deletes none of what the host network stands for, so its steps run
    // their removal on the VM (the e2e's scale-in shows it).
    expect(changes(two, oneAgain).deleted).not.toContain(host?.name);
  });

  it("stops a leaving node's kubelet before what its pods need: runtime, CNI config, pod images", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-scale-"));
    const archive = path.join(dir, "pause.tar");
    fs.writeFileSync(archive, "");
    const run = await runProgram({
      ...SMALL,
      "hardway:workers": "1",
      "hardway:podImages": JSON.stringify([archive]),
    }).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
    const urnOf = (name: string) => run.resources.find((r) => r.name === name)?.urn;
    const kubelet = run.resources.find((r) => r.name === "k8s-kubelet-worker0");
    for (const needed of [
      "k8s-runtime-worker0-containerd",
      "k8s-runtime-worker0-cni",
      "k8s-images-worker0",
    ]) {
      expect(urnOf(needed)).toBeDefined();
      expect(kubelet?.dependencies).toContain(urnOf(needed));
    }
  });
});

describe("changing the number of control planes of a live cluster", () => {
  // One life: one control plane, then three, then one again, with a worker throughout.
  let one: RecordedResource[];
  let three: RecordedResource[];
  let oneAgain: RecordedResource[];
  beforeAll(async () => {
    const shape = { ...SMALL, "hardway:workers": "1" };
    one = [...(await runProgram({ ...shape, "hardway:controlPlanes": "1" })).resources];
    const grown = await runProgram({ ...shape, "hardway:controlPlanes": "3" }, { prior: one });
    three = [...grown.resources];
    const shrunk = await runProgram({ ...shape, "hardway:controlPlanes": "1" }, { prior: three });
    oneAgain = [...shrunk.resources];
  }, 300_000);

  // What every control plane's count is written into, and why each changes.
  const FOLLOWS_THE_COUNT = {
    // dnsmasq's leases and names for the new VMs.
    "host-linux": ["stdin"],
    // ldirectord's real servers, and the probe that waits for the VIP.
    "k8s-api-ldirectord": ["bundles", "targets"],
    "k8s-api-health": ["args"],
    // The API server's certificate names every control node's address.
    "pki-kube-apiserver": ["dnsNames", "ipAddresses"],
    // The members (etcd's /etc/etcd/members; each API server's --etcd-servers and certificate).
    "k8s-etcd-members": ["bundles", "nodes", "targets"],
    "k8s-control-kube-apiserver": ["bundles", "firstAlone", "nodes", "targets"],
    // More than one: leader election for an emulated cluster's slow writes.
    "k8s-control-control0-kube-controller-manager": ["bundles", "targets"],
    "k8s-control-control0-kube-scheduler": ["bundles", "targets"],
  };
  const sorted = (u: Record<string, string[]>) =>
    Object.fromEntries(Object.entries(u).map(([k, v]) => [k, [...v].sort()]));

  it("adds two: their own resources, and updates only what lists the control nodes", () => {
    const { created, deleted, updated } = changes(one, three);
    expect(deleted).toEqual([]);
    expect(created.filter((name) => !/control[12]/.test(name))).toEqual([]);
    expect(created).toContain("vm-control1");
    expect(created).toContain("k8s-control-control2-kube-scheduler");
    expect(sorted(updated)).toEqual(FOLLOWS_THE_COUNT);
    // Nothing on the worker: its pod network is numbered by its own address, not by its place.
    expect(Object.keys(updated).filter((name) => name.includes("worker"))).toEqual([]);
  });

  it("removes two: exactly what adding them made, updating the same resources back", () => {
    const { created, deleted, updated } = changes(three, oneAgain);
    expect(created).toEqual([]);
    expect(deleted.sort()).toEqual(changes(one, three).created.sort());
    expect(sorted(updated)).toEqual(FOLLOWS_THE_COUNT);
    // Back where it started, but for the API server's re-issued certificate.
    expect(changes(one, oneAgain).updated).toEqual({
      "k8s-control-kube-apiserver": ["bundles", "targets"],
    });
  });

  it("replaces no step: each updates in place, members joining and leaving etcd one at a time", async () => {
    for (const [before, after] of [
      [one, three],
      [three, oneAgain],
    ]) {
      const was = new Map(
        byType(before, "pulumi-nodejs:dynamic/cluster:NodeStep").map((r) => [r.name, r]),
      );
      for (const step of byType(after, "pulumi-nodejs:dynamic/cluster:NodeStep")) {
        const old = was.get(step.name);
        if (old === undefined) {
          continue;
        }
        const diff = await nodeStepProvider.diff!(
          step.name,
          old.inputs as unknown as NodeStepState,
          step.inputs as unknown as NodeStepState,
        );
        expect({ step: step.name, replaces: diff.replaces }).toEqual({
          step: step.name,
          replaces: [],
        });
        const check = await nodeStepProvider.check!(
          old.inputs as unknown as NodeStepState,
          step.inputs as unknown as NodeStepState,
        );
        expect({ step: step.name, failures: check.failures ?? [] }).toEqual({
          step: step.name,
          failures: [],
        });
      }
    }
  });
});
