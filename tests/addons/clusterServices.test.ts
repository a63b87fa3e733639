/**
 * ClusterServices under Pulumi mocks: which Kubernetes resources exist for each CNI, that all of
 * them go through the one provider built from the kubeconfig, and in what order they may run.
 * The kubeconfig is a stand-in secret string: only its secrecy and its gating matter here.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type * as PulumiModule from "@pulumi/pulumi";
import { parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";
import { RecordedResource, installMocks } from "../harness/mocks";

const HOST = { os: "linux", cpu: "x64" } as const;
const EXPORT_DIR = "/home/me/.hardway/test/nfs";
const KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n";

const PROVIDER = "pulumi:providers:kubernetes";
const RELEASE = "kubernetes:helm.sh/v3:Release";
const NODE_PATCH = "kubernetes:core/v1:NodePatch";
const POOL = "kubernetes:metallb.io/v1beta1:IPAddressPool";
const L2 = "kubernetes:metallb.io/v1beta1:L2Advertisement";
const ENSURED = "pulumi-nodejs:dynamic/host:EnsuredScript";

interface Scenario {
  readonly prefix: string;
  readonly raw: Record<string, unknown>;
  /** How the API health step is handed over: as the resource, or as one of its outputs. */
  readonly apiReadyAs: "resource" | "output" | "not yet run";
  readonly secretKubeconfig: boolean;
}

/** Builds one ClusterServices with stand-ins for the API health probe and the kubelet steps. */
async function build(p: typeof PulumiModule, s: Scenario): Promise<void> {
  const { ClusterServices } = await import("../../components/addons/clusterServices");
  const { ClusterAccess } = await import("../../components/addons/clusterAccess");
  const config = parseConfig(s.raw, HOST);
  const plan = addressPlan(config);
  class StepStandIn extends p.CustomResource {
    constructor(type: string, name: string) {
      super(`test:cluster:${type}`, name, {});
    }
  }
  const health = new StepStandIn("ApiHealth", `${s.prefix}-api-health`);
  const etcd = new StepStandIn("Etcd", `${s.prefix}-etcd`);
  const kubelets = Object.fromEntries(
    plan.kubeletNodes.map((n) => [
      n.name,
      new StepStandIn("Kubelet", `${s.prefix}-kubelet-${n.name}`),
    ]),
  );
  const access = new ClusterAccess(`${s.prefix}-access`, {
    kubeconfig: s.secretKubeconfig ? p.secret(KUBECONFIG) : KUBECONFIG,
    apiReady:
      s.apiReadyAs === "resource"
        ? health
        : s.apiReadyAs === "output"
          ? health.id
          : // What a step that has never run yields during a preview.
            health.id.apply(() => p.unknown),
    clusterName: `hardway-${s.prefix}`,
    clusterData: etcd,
  });
  new ClusterServices(`${s.prefix}-addons`, {
    plan,
    cni: config.cni,
    services: config.services,
    charts: config.versions.charts,
    chartMirror: config.chartMirror,
    chartValues: config.chartValues,
    emulated: config.accelerator === "tcg",
    corednsVersion: config.versions.coredns,
    provider: access.provider,
    kubeconfig: s.secretKubeconfig ? p.secret(KUBECONFIG) : KUBECONFIG,
    clusterData: etcd,
    nfsPath: p.output(EXPORT_DIR),
    kubelets,
  });
}

async function settled(resources: readonly RecordedResource[]): Promise<void> {
  let last = -1;
  let stable = 0;
  while (stable < 10) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    stable = resources.length === last ? stable + 1 : 0;
    last = resources.length;
  }
}

const SCENARIOS: Scenario[] = [
  { prefix: "bri", raw: {}, apiReadyAs: "output", secretKubeconfig: false },
  {
    prefix: "cil",
    raw: { cni: "cilium", subnet: "10.77.5.0/24" },
    apiReadyAs: "resource",
    secretKubeconfig: true,
  },
];

/** Stacks that leave services out or take charts from a mirror. */
const CHOICES: Scenario[] = [
  {
    prefix: "oci",
    raw: {
      cni: "cilium",
      services: ["metallb"],
      accelerator: "tcg",
      chartMirror: "oci://mirror.lab:5000/charts/",
      chartValues: {
        cilium: {
          envoy: { enabled: false },
          image: { useDigest: false },
          kubeProxyReplacement: false,
          name: "agents",
        },
      },
    },
    apiReadyAs: "output",
    secretKubeconfig: false,
  },
  {
    prefix: "dir",
    raw: { services: ["nfsProvisioner"], chartMirror: "/srv/charts" },
    apiReadyAs: "output",
    secretKubeconfig: false,
  },
  { prefix: "none", raw: { services: [] }, apiReadyAs: "output", secretKubeconfig: false },
];

let resources: RecordedResource[];

beforeAll(async () => {
  resources = await installMocks(pulumi);
  for (const scenario of [...SCENARIOS, ...CHOICES]) {
    await build(pulumi, scenario);
  }
  await settled(resources);
});

const inScenario = (prefix: string) => resources.filter((r) => r.name.startsWith(`${prefix}-`));
const named = (name: string): RecordedResource => {
  const found = resources.find((r) => r.name === name);
  if (found === undefined) {
    throw new Error(`no resource ${name}`);
  }
  return found;
};
const isKubernetes = (r: RecordedResource) => r.type.startsWith("kubernetes:");

describe.each(SCENARIOS.map((s) => [s.prefix, s] as const))("%s", (prefix) => {
  it("sends every Kubernetes resource through the one provider built from the kubeconfig", () => {
    const providers = inScenario(prefix).filter((r) => r.type === PROVIDER);
    expect(providers.map((r) => r.name)).toEqual([`${prefix}-access-k8s`]);
    const kubernetesResources = inScenario(prefix).filter(isKubernetes);
    expect(kubernetesResources.length).toBeGreaterThanOrEqual(8);
    for (const r of kubernetesResources) {
      expect({ name: r.name, provider: r.provider?.split("::").slice(0, -1).join("::") }).toEqual({
        name: r.name,
        provider: providers[0].urn,
      });
      expect([
        named(`${prefix}-addons`).urn,
        named(`${prefix}-addons-coredns`).urn,
        named(`${prefix}-access`).urn,
      ]).toContain(r.parentUrn);
    }
  });

  it("hands the provider the kubeconfig as a secret, only after the API health step", () => {
    const provider = named(`${prefix}-access-k8s`);
    expect(provider.inputs.kubeconfig).toBe(KUBECONFIG);
    expect(provider.secretInputs).toContain("kubeconfig");
    expect(provider.dependencies).toContain(named(`${prefix}-api-health`).urn);
    // Provider configuration reaches the engine as strings.
    expect(provider.inputs.enableServerSideApply).toBe("true");
  });

  it("names the provider by the cluster, so a new kubeconfig updates rather than replaces it", () => {
    const provider = named(`${prefix}-access-k8s`);
    expect(provider.inputs.clusterIdentifier).toBe(`hardway-${prefix}`);
  });

  it("deletes every object with the etcd step and never drops one the cluster may still hold", () => {
    // With deleteUnreachable a refresh with the VMs stopped would forget objects that exist.
    expect(named(`${prefix}-access-k8s`).inputs.deleteUnreachable).toBeUndefined();
    const etcd = named(`${prefix}-etcd`).urn;
    const objects = inScenario(prefix).filter(isKubernetes);
    expect(objects.length).toBeGreaterThanOrEqual(8);
    for (const r of objects) {
      expect({ name: r.name, deletedWith: r.deletedWith }).toEqual({
        name: r.name,
        deletedWith: etcd,
      });
    }
  });

  it("installs the MetalLB pool and its L2 advertisement only after the MetalLB release", () => {
    const metallb = named(`${prefix}-addons-metallb`).urn;
    const pool = named(`${prefix}-addons-metallb-pool`);
    const l2 = named(`${prefix}-addons-metallb-l2`);
    expect([pool.type, l2.type]).toEqual([POOL, L2]);
    expect(pool.dependencies).toContain(metallb);
    expect(l2.dependencies).toContain(metallb);
    expect(l2.inputs.spec).toEqual({ ipAddressPools: ["hardway-pool"] });
  });

  it("creates the pool only once the host saw MetalLB's webhook admit exactly that pool", () => {
    const metallb = named(`${prefix}-addons-metallb`).urn;
    const admission = named(`${prefix}-addons-metallb-admission`);
    const pool = named(`${prefix}-addons-metallb-pool`);
    const l2 = named(`${prefix}-addons-metallb-l2`);
    expect(admission.type).toBe(ENSURED);
    expect(admission.dependencies).toContain(metallb);
    expect(pool.dependencies).toContain(admission.urn);
    expect(l2.dependencies).toContain(admission.urn);
    const args = admission.inputs.args as string[];
    const option = (flag: string) => args[args.indexOf(flag) + 1];
    expect(admission.inputs.script).toBe("cluster/wait-for-object.sh");
    expect(option("--until")).toBe("admitted");
    expect(option("--path")).toBe("/apis/metallb.io/v1beta1/namespaces/kube-system/ipaddresspools");
    const { apiVersion, kind, metadata, spec } = pool.inputs;
    expect(JSON.parse(option("--body"))).toEqual({ apiVersion, kind, metadata, spec });
    // The admin kubeconfig goes on stdin, never among the arguments, which the state keeps in clear.
    expect(admission.inputs.stdin).toBe(KUBECONFIG);
    expect(args.join(" ")).not.toContain("kind: Config");
    expect(admission.inputs.watch).toBe(false);
  });

  it("installs releases after the first node pods can run on, not after every kubelet", () => {
    const kubelets = inScenario(prefix).filter((r) => r.type === "test:cluster:Kubelet");
    expect(kubelets).toHaveLength(6);
    const worker0 = named(`${prefix}-kubelet-worker0`).urn;
    for (const r of inScenario(prefix).filter((x) => x.type === RELEASE)) {
      const waitsFor = kubelets.filter((k) => r.dependencies.includes(k.urn)).map((k) => k.urn);
      expect({ release: r.name, waitsFor }).toEqual({ release: r.name, waitsFor: [worker0] });
    }
  });

  it("labels each control node as control plane from the host, once the API calls that node Ready", () => {
    // No NodePatch: the provider does not retry a patch past the API server's write deadline.
    expect(inScenario(prefix).filter((r) => r.type === NODE_PATCH)).toEqual([]);
    const labels = inScenario(prefix).filter((r) => r.name.includes("-addons-role-"));
    expect(labels.map((r) => r.name).sort()).toEqual(
      ["control0", "control1", "control2"].map((n) => `${prefix}-addons-role-${n}`),
    );
    for (const node of ["control0", "control1", "control2"]) {
      const label = named(`${prefix}-addons-role-${node}`);
      // It asks about this node alone, after its own kubelet step.
      expect(label.type).toBe(ENSURED);
      expect(label.inputs.script).toBe("cluster/wait-for-object.sh");
      expect((label.inputs.args as string[]).slice(0, 6)).toEqual([
        "--until",
        "labelled",
        "--path",
        `/api/v1/nodes/${node}`,
        "--label",
        "node-role.kubernetes.io/control-plane=",
      ]);
      expect(label.dependencies).toEqual([named(`${prefix}-kubelet-${node}`).urn]);
      expect(label.inputs.stdin).toBe(KUBECONFIG);
    }
  });
});

describe("releases", () => {
  const release = (name: string) => named(name).inputs;
  const releaseNames = (prefix: string) =>
    inScenario(prefix)
      .filter((r) => r.type === RELEASE)
      .map((r) => r.inputs.name)
      .sort();

  it("installs Cilium only with cni=cilium, and every other workload after it", () => {
    expect(releaseNames("bri")).toEqual(["metallb", "nfs-provisioner"]);
    expect(releaseNames("cil")).toEqual(["cilium", "metallb", "nfs-provisioner"]);
    const cilium = named("cil-addons-cilium").urn;
    for (const other of ["metallb", "nfs-provisioner", "coredns-deployment"]) {
      expect(named(`cil-addons-${other}`).dependencies).toContain(cilium);
    }
  });

  it("waits until every Cilium agent is Ready before any other workload, longer on emulated nodes", () => {
    const wait = named("cil-addons-cilium-agents");
    expect(wait.inputs.args).toEqual([
      "--until",
      "rolled-out",
      "--path",
      "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium",
      "--attempts",
      "60",
      "--interval",
      "10",
    ]);
    expect(wait.dependencies).toContain(named("cil-addons-cilium").urn);
    for (const other of ["metallb", "nfs-provisioner", "coredns-deployment"]) {
      expect(named(`cil-addons-${other}`).dependencies).toContain(wait.urn);
    }
    // Emulated, and the DaemonSet renamed through the stack's chartValues.
    const emulated = named("oci-addons-cilium-agents").inputs.args as string[];
    expect(emulated.slice(2, 6)).toEqual([
      "--path",
      "/apis/apps/v1/namespaces/kube-system/daemonsets/agents",
      "--attempts",
      "270",
    ]);
    expect(named("oci-addons-metallb").dependencies).toContain(
      named("oci-addons-cilium-agents").urn,
    );
    expect(inScenario("bri").filter((r) => r.name.includes("cilium"))).toEqual([]);
  });

  it("pins each chart's repository and version from the config and waits for readiness", () => {
    const defaults = parseConfig({}, HOST).versions.charts;
    expect(release("cil-addons-cilium")).toMatchObject({
      chart: defaults.cilium.chart,
      version: defaults.cilium.version,
      repositoryOpts: { repo: defaults.cilium.repository },
      namespace: "kube-system",
      skipAwait: false,
      atomic: true,
      timeout: 900,
    });
    expect(release("bri-addons-nfs-provisioner")).toMatchObject({
      chart: defaults.nfsProvisioner.chart,
      version: defaults.nfsProvisioner.version,
      repositoryOpts: { repo: defaults.nfsProvisioner.repository },
      skipAwait: false,
    });
  });

  it("waits twice as long for Cilium on emulated nodes, and its operator keeps its lease longer", () => {
    expect(release("oci-addons-cilium").timeout).toBe(1800);
    const operator = (release("oci-addons-cilium").values as { operator: object }).operator;
    expect(operator).toHaveProperty(
      "extraArgs",
      expect.arrayContaining(["--leader-election-lease-duration=180s"]),
    );
    expect(
      (release("cil-addons-cilium").values as { operator: object }).operator,
    ).not.toHaveProperty("extraArgs");
    expect(release("oci-addons-metallb").timeout).toBe(600);
    // MetalLB's liveness probes wait 5 minutes there before they may restart anything.
    const metallb = (prefix: string) =>
      release(`${prefix}-addons-metallb`).values as { controller: object; speaker: object };
    expect(metallb("oci").controller).toHaveProperty("livenessProbe", { initialDelaySeconds: 300 });
    expect(metallb("oci").speaker).toHaveProperty("livenessProbe", { initialDelaySeconds: 300 });
    expect(metallb("cil").controller).not.toHaveProperty("livenessProbe");
    // A node is Ready only once Cilium runs: the host waits up to 30 minutes for it there.
    const attempts = (name: string) => {
      const args = named(name).inputs.args as string[];
      return args[args.indexOf("--attempts") + 1];
    };
    expect([attempts("oci-addons-role-control0"), attempts("cil-addons-role-control0")]).toEqual([
      "180",
      "60",
    ]);
    expect(release("cil-addons-metallb").timeout).toBe(600);
  });

  it("takes every chart from the chart mirror: an OCI registry path or a directory of packages", () => {
    const defaults = parseConfig({}, HOST).versions.charts;
    const oci = release("oci-addons-metallb");
    expect(oci).toMatchObject({
      chart: "oci://mirror.lab:5000/charts/metallb",
      version: defaults.metallb.version,
    });
    expect(oci).not.toHaveProperty("repositoryOpts");
    expect(release("oci-addons-cilium").chart).toBe("oci://mirror.lab:5000/charts/cilium");
    const local = release("dir-addons-nfs-provisioner");
    expect(local.chart).toBe(
      `/srv/charts/nfs-subdir-external-provisioner-${defaults.nfsProvisioner.version}.tgz`,
    );
    expect(local).not.toHaveProperty("repositoryOpts");
    expect(local).not.toHaveProperty("version");
  });

  it("lays the stack's chartValues over its own values, and only on the release they name", () => {
    const values = release("oci-addons-cilium").values as Record<string, unknown>;
    expect(values).toMatchObject({
      envoy: { enabled: false },
      image: { useDigest: false },
      // The stack's value wins over hardway's, keys it does not name stay.
      kubeProxyReplacement: false,
      enableLBIPAM: false,
    });
    expect(values.k8sServiceHost).toBe(addressPlan(parseConfig({}, HOST)).apiVip);
    expect(release("oci-addons-metallb").values).not.toHaveProperty("envoy");
    expect(release("cil-addons-cilium").values).not.toHaveProperty("envoy");
  });

  it("installs only the services the stack names, and labels the control nodes without CoreDNS", () => {
    expect(releaseNames("oci")).toEqual(["cilium", "metallb"]);
    expect(releaseNames("dir")).toEqual(["nfs-provisioner"]);
    expect(releaseNames("none")).toEqual([]);
    for (const prefix of ["oci", "dir", "none"]) {
      expect(inScenario(prefix).filter((r) => r.name.includes("-coredns"))).toEqual([]);
      const patch = named(`${prefix}-addons-role-control0`);
      expect(patch.dependencies).toContain(named(`${prefix}-kubelet-control0`).urn);
      // The `up` ends once the controller manager runs its controllers, whatever is installed.
      const controllers = named(`${prefix}-addons-controllers`);
      expect(controllers.inputs.args).toEqual(
        expect.arrayContaining([
          "present",
          "/api/v1/namespaces/default/serviceaccounts/default",
          "--attempts",
          "180",
        ]),
      );
      expect(controllers.dependencies).toContain(patch.urn);
    }
    expect(inScenario("dir").filter((r) => r.type === POOL || r.type === L2)).toEqual([]);
    // Without MetalLB, Cilium keeps its own LoadBalancer IPAM; with it, Cilium's is off.
    expect(release("cil-addons-cilium").values).toMatchObject({ enableLBIPAM: false });
  });

  it("fills values and objects from the address plan of the scenario", () => {
    expect(release("cil-addons-cilium").values).toMatchObject({
      k8sServiceHost: "10.77.5.20",
      k8sServicePort: 6443,
    });
    expect(named("bri-addons-coredns-service").inputs.spec).toMatchObject({
      clusterIP: "10.32.0.10",
    });
    expect(release("cil-addons-nfs-provisioner").values).toMatchObject({
      nfs: { server: "10.77.5.1", path: EXPORT_DIR },
      storageClass: { defaultClass: true },
    });
    expect(named("cil-addons-metallb-pool").inputs.spec).toEqual({
      addresses: ["10.77.5.200-10.77.5.250"],
    });
  });

  it("creates CoreDNS's Deployment after its RBAC, its Corefile and the first kubelet", () => {
    const deployment = named("bri-addons-coredns-deployment");
    for (const before of ["coredns-binding", "coredns-config"]) {
      expect(deployment.dependencies).toContain(named(`bri-addons-${before}`).urn);
    }
    expect(deployment.dependencies).toContain(named("bri-kubelet-worker0").urn);
    expect(
      inScenario("bri")
        .filter((r) => r.parentUrn === named("bri-addons-coredns").urn)
        .map((r) => r.type)
        .sort(),
    ).toEqual([
      "kubernetes:apps/v1:Deployment",
      "kubernetes:core/v1:ConfigMap",
      "kubernetes:core/v1:Service",
      "kubernetes:core/v1:ServiceAccount",
      "kubernetes:policy/v1:PodDisruptionBudget",
      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
    ]);
  });
});

describe("arguments", () => {
  it("names the control nodes a partial kubelets map leaves out", async () => {
    const { ClusterServices } = await import("../../components/addons/clusterServices");
    const config = parseConfig({ controlPlanes: 3 }, HOST);
    expect(
      () =>
        new ClusterServices("partial", {
          plan: addressPlan(config),
          cni: "bridge",
          charts: config.versions.charts,
          corednsVersion: config.versions.coredns,
          provider: new k8s.Provider("partial-k8s", { kubeconfig: KUBECONFIG }),
          kubeconfig: KUBECONFIG,
          clusterData: new pulumi.ComponentResource("test:cluster:Etcd", "partial-etcd"),
          nfsPath: EXPORT_DIR,
          kubelets: {},
        }),
    ).toThrow("kubelets has no entry for control0, control1, control2; pass Kubelet.nodes");
  });
});

describe("preview of a new stack", () => {
  it("registers every resource while the provider's kubeconfig is still unknown", async () => {
    let previewed: RecordedResource[] = [];
    await jest.isolateModulesAsync(async () => {
      const fresh = (await import("@pulumi/pulumi")) as typeof PulumiModule;
      previewed = await installMocks(fresh, {}, true);
      await build(fresh, {
        prefix: "pre",
        raw: { cni: "cilium" },
        apiReadyAs: "not yet run",
        secretKubeconfig: true,
      });
      await settled(previewed);
    });
    const names = previewed.filter(isKubernetes).map((r) => r.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "pre-addons-cilium",
        "pre-addons-coredns-deployment",
        "pre-addons-coredns-service",
        "pre-addons-metallb",
        "pre-addons-nfs-provisioner",
        "pre-addons-metallb-pool",
        "pre-addons-metallb-l2",
      ]),
    );
    expect(previewed.map((r) => r.name)).toContain("pre-addons-role-control0");
    const provider = previewed.find((r) => r.type === PROVIDER);
    // The mock monitor's form of an unknown value: the engine leaves such a provider unconfigured.
    expect(provider?.inputs.kubeconfig).toEqual({ __pulumiUnknown: true });
    expect(provider?.dependencies).toContain(
      previewed.find((r) => r.name === "pre-api-health")?.urn,
    );
  });
});
