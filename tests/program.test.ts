/**
 * The whole program (index.ts) under mocks, with the default config and with each switch.
 */
import { ProgramFailure, byType, runProgram, unwrap } from "./harness/mocks";

const LEAF = "pulumi-nodejs:dynamic/pki:Certificate";

/** The node a per-node resource is for, from its name (k8s-scripts-control0 → control0). */
function plan(name: string): string {
  return /(gateway|control\d+|worker\d+)/.exec(name)![1];
}

describe("the program under mocks", () => {
  it("builds the PKI and exports the outputs with the default config", async () => {
    const run = await runProgram();
    const leafNames = byType(run.resources, LEAF).map((r) => r.name);
    expect(byType(run.resources, LEAF).filter((r) => r.inputs.isCa)).toHaveLength(3);
    expect(leafNames).toEqual(
      expect.arrayContaining(["pki-kube-apiserver", "pki-admin", "pki-kubelet-worker2"]),
    );
    expect(run.exports.apiServer).toBe("https://192.168.234.20:6443");
    expect(Object.keys(run.exports.nodes as object)).toEqual([
      "gateway",
      "control0",
      "control1",
      "control2",
      "worker0",
      "worker1",
      "worker2",
    ]);
    expect((await unwrap(run.exports.sshConfig)).value).toMatch(
      /Host control0 control0\.hardway\.internal\n {2}HostName 192\.168\.234\.11\n(.*\n)* {2}KnownHostsCommand \/bin\/echo hardway-test-control0 ssh-ed25519 /,
    );
    const pki = run.resources.find((r) => r.type === "hardway:pki:Pki");
    expect(pki).toBeDefined();
    for (const leaf of byType(run.resources, LEAF)) {
      expect(leaf.parentUrn).toBe(pki!.urn);
    }
  });

  it("exports exactly the outputs SPEC.md lists", async () => {
    const run = await runProgram();
    expect(Object.keys(run.exports).sort()).toEqual(
      [
        "apiServer",
        "caCertPem",
        "certificateExpiry",
        "kubeconfig",
        "nodes",
        "sshConfig",
        "sshPrivateKey",
      ].sort(),
    );
  });

  it("exports every private key and kubeconfig as a secret, and certificates in the clear", async () => {
    const run = await runProgram();
    const out = run.exports;
    expect((await unwrap(out.kubeconfig)).secret).toBe(true);
    expect((await unwrap(out.sshPrivateKey)).secret).toBe(true);
    expect((await unwrap(out.caCertPem)).secret).toBe(false);
    expect((await unwrap(out.caCertPem)).value).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const expiry = (await unwrap(out.certificateExpiry)).value as Record<string, string>;
    expect(Object.keys(expiry)).toContain("kube-apiserver");
  });

  it("gives the Kubernetes provider a request timeout long enough for emulated control nodes", async () => {
    // The first /openapi/v2 the provider reads when it is configured took over the client's
    // default 32 s on a TCG control node, and the whole run failed "cluster unreachable".
    const run = await runProgram({ "hardway:accelerator": "tcg" });
    const provider = run.resources.find((r) => r.name === "access-k8s");
    // The SDK hands object-valued provider settings to the provider as JSON text.
    expect(JSON.parse(provider?.inputs.kubeClientSettings as string)).toEqual({ timeout: 300 });
  });

  it.each<[string, Record<string, string>, number, number]>([
    ["arm64", { "hardway:arch": "arm64" }, 3, 3],
    ["amd64", { "hardway:arch": "amd64" }, 3, 3],
    ["cri-o", { "hardway:containerRuntime": "cri-o" }, 3, 3],
    ["cilium", { "hardway:cni": "cilium" }, 3, 3],
    ["1 control plane", { "hardway:controlPlanes": "1" }, 1, 3],
    ["5 control planes", { "hardway:controlPlanes": "5" }, 5, 3],
    ["0 workers", { "hardway:workers": "0" }, 3, 0],
    ["5 workers", { "hardway:workers": "5" }, 3, 5],
  ])("runs with %s", async (_what, config, controls, workers) => {
    const run = await runProgram(config);
    const names = byType(run.resources, LEAF).map((r) => r.name);
    expect(names.filter((n) => n.startsWith("pki-kubelet-control"))).toHaveLength(controls);
    expect(names.filter((n) => n.startsWith("pki-kubelet-worker"))).toHaveLength(workers);
    expect(names.filter((n) => n.startsWith("pki-etcd-server-"))).toHaveLength(controls);
    expect(Object.keys(run.exports.nodes as object)).toHaveLength(1 + controls + workers);
    expect(byType(run.resources, "hardway:vm:VirtualMachine")).toHaveLength(1 + controls + workers);
    expect(byType(run.resources, "hardway:cluster:KubernetesCluster")).toHaveLength(1);
    const kubeProxies = byType(run.resources, "hardway:cluster:KubeProxy");
    expect(kubeProxies).toHaveLength(config["hardway:cni"] === "cilium" ? 0 : 1);
    const releases = byType(run.resources, "kubernetes:helm.sh/v3:Release").map((r) => r.name);
    expect(releases.some((n) => n.includes("cilium"))).toBe(config["hardway:cni"] === "cilium");
  });

  it("talks to the cluster only through the provider built from the kubeconfig, after the API answers", async () => {
    const run = await runProgram();
    const providers = byType(run.resources, "pulumi:providers:kubernetes");
    expect(providers).toHaveLength(1);
    const health = run.resources.find((r) => r.name === "k8s-api-health");
    expect(providers[0].dependencies).toContain(health!.urn);
    expect(providers[0].secretInputs).toContain("kubeconfig");
    const k8s = run.resources.filter((r) => r.type.startsWith("kubernetes:"));
    expect(k8s.length).toBeGreaterThan(4);
    for (const r of k8s) {
      // A provider reference is "<urn>::<id>".
      const providerUrn = r.provider?.slice(0, r.provider.lastIndexOf("::"));
      expect(`${r.name} ${providerUrn}`).toBe(`${r.name} ${providers[0].urn}`);
    }
  });

  it("installs Kubernetes on a VM only after it is up, and again whenever it is new", async () => {
    const run = await runProgram();
    const vmScripts = run.resources.filter(
      (r) => r.name.startsWith("vm-") && r.name.endsWith("-qemu"),
    );
    expect(vmScripts).toHaveLength(7);
    const steps = byType(run.resources, "pulumi-nodejs:dynamic/cluster:NodeStep");
    expect(steps.length).toBeGreaterThan(20);
    for (const step of steps) {
      for (const target of step.inputs.targets as { node: string; instance: string }[]) {
        const qemu = vmScripts.find((r) => r.name === `vm-${target.node}-qemu`);
        // The VM's instance id is an input: the step waits for the VM (through the copy of its
        // release files, where it has any) and runs again on a new disk.
        const releases = run.resources.find((r) => r.name === `k8s-releases-${target.node}`);
        expect(step.dependencies).toContain((releases ?? qemu)!.urn);
        if (releases !== undefined) {
          expect(releases.dependencies).toContain(qemu!.urn);
        }
        expect(target.instance).toBe(qemu!.state.output);
      }
    }
    expect(
      new Set(
        steps.flatMap((s) => (s.inputs.targets as { node: string }[]).map((t) => plan(t.node))),
      ).size,
    ).toBe(7);
  });

  it.each([
    ["vms", ["HostNetwork", "VirtualMachine"], ["KubernetesCluster", "ClusterServices"]],
    ["controlPlane", ["ControlPlane", "ApiLoadBalancer"], ["Kubelet", "ClusterServices"]],
    ["nodes", ["Kubelet", "NodeRuntime"], ["ClusterServices"]],
    ["services", ["Kubelet", "ClusterServices"], []],
  ])("stops after %s", async (stage, present, absent) => {
    const run = await runProgram({ "hardway:stopAfter": stage });
    const types = new Set(run.resources.map((r) => r.type.split(":").pop()));
    for (const component of present) {
      expect(`${component}: ${types.has(component)}`).toBe(`${component}: true`);
    }
    for (const component of absent) {
      expect(`${component}: ${types.has(component)}`).toBe(`${component}: false`);
    }
  });

  it("starts every VM only after the host network is up, from one shared base image", async () => {
    const run = await runProgram();
    const network = byType(run.resources, "hardway:host:HostNetwork");
    expect(network).toHaveLength(1);
    expect(byType(run.resources, "hardway:vm:BaseImage")).toHaveLength(1);
    const vms = byType(run.resources, "hardway:vm:VirtualMachine");
    expect(vms.map((r) => r.name)).toEqual([
      "vm-gateway",
      "vm-control0",
      "vm-control1",
      "vm-control2",
      "vm-worker0",
      "vm-worker1",
      "vm-worker2",
    ]);
    // dependsOn a component waits for its children: here the script that builds the network.
    const script = run.resources.find((r) => r.parentUrn === network[0].urn);
    expect(script?.type).toBe("pulumi-nodejs:dynamic/host:EnsuredScript");
    for (const vm of vms) {
      expect(vm.dependencies).toContain(script!.urn);
    }
    const control0 = run.resources.find((r) => r.name === "vm-control0-qemu");
    expect(control0?.inputs.args).toEqual(
      expect.arrayContaining(["--state-dir", "/var/lib/hardway/test/vms/control0"]),
    );
  });

  it("refuses a bad config before registering anything", async () => {
    const failure = await runProgram({
      "hardway:controlPlanes": "2",
      "hardway:cni": "flannel",
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(ProgramFailure);
    const { message, resources } = failure as ProgramFailure;
    expect(message).toMatch(/hardway:controlPlanes: expected one of 1, 3, 5 \(got 2\)/);
    expect(message).toMatch(/hardway:cni: expected one of bridge, cilium \(got "flannel"\)/);
    expect(resources).toHaveLength(0);
  });
});
