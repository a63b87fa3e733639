/**
 * Builds the cluster's steps under Pulumi mocks from a real Pki and the address plan of
 * parseConfig(raw), through the same KubernetesCluster component index.ts uses.
 */
import type * as PulumiModule from "@pulumi/pulumi";
import type { RecordedResource } from "../harness/mocks";

export const HOST = { os: "linux", cpu: "x64" } as const;

export interface Scenario {
  /** Prefix of every resource name, so several scenarios share one mocked run. */
  readonly prefix: string;
  readonly raw: Readonly<Record<string, unknown>>;
  /** The VMs run under TCG (index.ts: the resolved accelerator is "tcg"). */
  readonly emulated?: boolean;
}

/** Registers every component of the wiring for one scenario. */
export async function buildScenario(
  pulumi: typeof PulumiModule,
  scenario: Scenario,
): Promise<void> {
  const { parseConfig } = await import("../../components/config/schema");
  const { addressPlan } = await import("../../components/network/addressPlan");
  const { Pki } = await import("../../components/pki/pki");
  const { KubernetesCluster } = await import("../../components/cluster/kubernetesCluster");

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
  // Stands in for the VirtualMachine components: the instance id every step takes as input.
  class VmStandIn extends pulumi.CustomResource {
    declare readonly instance: PulumiModule.Output<string>;
    constructor(name: string) {
      super("test:vm:Vm", name, { instance: `${name}-instance` });
    }
  }
  const hosts = Object.fromEntries(
    plan.nodes.map((n) => {
      const vm = new VmStandIn(`${p}-vm-${n.name}`);
      return [n.name, { hostKey: pki.hostKeys[n.name].publicKey, instance: vm.instance }];
    }),
  );
  new KubernetesCluster(p, {
    config,
    plan,
    pki,
    clusterName: "hardway-test",
    nodes: { connection: { user: "ubuntu", privateKey: pki.ssh.privateKey }, hosts },
    through: config.stopAfter === "controlPlane" ? "controlPlane" : "nodes",
    cacheDir: "/cache",
    emulated: scenario.emulated,
  });
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
