/**
 * Builds the cluster's remote-command wiring under Pulumi mocks from a real Pki and the address
 * plan of parseConfig(raw), the way index.ts would, and waits until everything has registered.
 */
import type * as PulumiModule from "@pulumi/pulumi";
import type { RecordedResource } from "../harness/mocks";

export const HOST = { os: "linux", cpu: "x64" } as const;

export interface Scenario {
  /** Prefix of every resource name, so several scenarios share one mocked run. */
  readonly prefix: string;
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Registers every component of the wiring for one scenario. */
export async function buildScenario(
  pulumi: typeof PulumiModule,
  scenario: Scenario,
): Promise<void> {
  const { parseConfig } = await import("../../components/config/schema");
  const { addressPlan } = await import("../../components/network/addressPlan");
  const { Pki } = await import("../../components/pki/pki");
  const { artifacts } = await import("../../components/kubernetes/artifacts");
  const { ArtifactCache } = await import("../../components/cluster/artifactCache");
  const { NodeScripts } = await import("../../components/cluster/nodeScripts");
  const { Etcd } = await import("../../components/cluster/etcd");
  const { ControlPlane } = await import("../../components/cluster/controlPlane");
  const { ApiLoadBalancer } = await import("../../components/cluster/apiLoadBalancer");
  const { NodeRuntime } = await import("../../components/cluster/nodeRuntime");
  const { Kubelet } = await import("../../components/cluster/kubelet");
  const { KubeProxy } = await import("../../components/cluster/kubeProxy");
  const { PodRoutes } = await import("../../components/cluster/podRoutes");

  const p = scenario.prefix;
  const config = parseConfig(scenario.raw, HOST);
  const plan = addressPlan(config);
  const pki = new Pki(`${p}-pki`, {
    plan,
    clusterName: "hardway-test",
    caValidityHours: config.pki.caValidityHours,
    validityHours: config.pki.validityHours,
    earlyRenewalHours: config.pki.earlyRenewalHours,
  });
  // Stands in for the VirtualMachine components: what the steps must wait for.
  class VmStandIn extends pulumi.CustomResource {
    constructor(name: string) {
      super("test:vm:Vm", name, {});
    }
  }
  const vmReady = Object.fromEntries(
    plan.nodes.map((n) => [n.name, new VmStandIn(`${p}-vm-${n.name}`)]),
  );
  const scripts = new NodeScripts(`${p}-scripts`, {
    nodes: plan.nodes,
    privateKey: pki.ssh.privateKey,
    vmReady,
  });
  const cache = new ArtifactCache(`${p}-artifacts`, {
    artifacts: artifacts(config),
    cacheDir: "/cache",
  });
  const etcd = new Etcd(`${p}-etcd`, {
    plan,
    pki,
    scripts,
    artifacts: cache,
    clusterToken: "hardway-test",
  });
  const controlPlane = new ControlPlane(`${p}-control`, {
    plan,
    pki,
    scripts,
    artifacts: cache,
    etcdHealth: etcd.health,
  });
  const api = new ApiLoadBalancer(`${p}-api`, {
    plan,
    pki,
    scripts,
    apiServers: controlPlane.apiServers,
  });
  const runtime = new NodeRuntime(`${p}-runtime`, {
    nodes: plan.kubeletNodes,
    runtime: config.containerRuntime,
    cni: config.cni,
    scripts,
    artifacts: cache,
  });
  new Kubelet(`${p}-kubelet`, {
    plan,
    pki,
    runtime: config.containerRuntime,
    cni: config.cni,
    scripts,
    artifacts: cache,
    runtimeSteps: Object.fromEntries(
      Object.entries(runtime.nodes).map(([node, steps]) => [node, steps.runtime]),
    ),
    apiHealth: api.health,
  });
  if (config.cni === "bridge") {
    new KubeProxy(`${p}-kube-proxy`, { plan, pki, scripts, artifacts: cache });
    new PodRoutes(`${p}-routes`, { plan, hostOs: "linux", uid: 1000 });
  }
}

/** Waits until the mocked program has stopped registering resources. */
export async function settled(resources: readonly RecordedResource[]): Promise<void> {
  let last = -1;
  let stable = 0;
  while (stable < 10) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    stable = resources.length === last ? stable + 1 : 0;
    last = resources.length;
  }
}
