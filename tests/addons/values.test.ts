/**
 * Helm is not installed where these tests run, so the values are checked as data: every key we
 * set must be one the pinned chart's values.yaml documents (a misspelt key, such as the guide's
 * `cgroup.automount`, would be silently ignored by Helm), and every address must come from the
 * address plan, which the tests move by changing the subnet and CIDRs.
 */
import { parseConfig } from "../../components/config/schema";
import { AddressPlan, addressPlan } from "../../components/network/addressPlan";
import { CONTROL_PLANE_TAINT } from "../../components/kubernetes/kubelet";
import {
  HOST_CGROUP_ROOT,
  ciliumValues,
  corednsValues,
  l2AdvertisementSpec,
  metallbPoolSpec,
  metallbValues,
  nfsProvisionerValues,
} from "../../components/addons/values";

const HOST = { os: "linux", cpu: "x64" } as const;
const planFor = (raw: Record<string, unknown>): AddressPlan => addressPlan(parseConfig(raw, HOST));

const standard = planFor({});
const moved = planFor({
  subnet: "10.77.5.0/24",
  clusterCidr: "10.244.0.0/16",
  serviceCidr: "10.96.0.0/16",
});
const EXPORT_DIR = "/home/me/.hardway/test/nfs";

/**
 * Leaf keys (and list-valued keys) each pinned chart's values.yaml documents, for the keys this
 * project sets: cilium 1.18.12, coredns 1.46.2, metallb 0.16.1, nfs-subdir-external-provisioner
 * 4.0.18.
 */
const DOCUMENTED = {
  cilium: [
    "kubeProxyReplacement",
    "k8sServiceHost",
    "k8sServicePort",
    "cgroup.autoMount.enabled",
    "cgroup.hostRoot",
    "ipam.mode",
    "ipam.operator.clusterPoolIPv4PodCIDRList",
    "ipam.operator.clusterPoolIPv4MaskSize",
    "operator.replicas",
  ],
  coredns: ["replicaCount", "service.clusterIP", "servers", "tolerations"],
  metallb: ["frrk8s.enabled", "controller.tolerations"],
  nfs: ["nfs.server", "nfs.path", "storageClass.name", "storageClass.defaultClass", "tolerations"],
};

/** Dotted paths of every leaf; a list is a leaf, as Helm replaces lists whole. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return [prefix];
  }
  return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

describe("keys", () => {
  it.each([
    ["cilium", ciliumValues(standard), DOCUMENTED.cilium],
    ["coredns", corednsValues(planFor({ workers: 0 })), DOCUMENTED.coredns],
    ["metallb", metallbValues(planFor({ workers: 0 })), DOCUMENTED.metallb],
    [
      "nfs",
      nfsProvisionerValues({ plan: planFor({ workers: 0 }), exportDir: EXPORT_DIR }),
      DOCUMENTED.nfs,
    ],
  ])("sets only keys the %s chart documents", (_chart, values, documented) => {
    const unknown = keyPaths(values).filter((path) => !documented.includes(path));
    expect(unknown).toEqual([]);
  });
});

describe("Cilium", () => {
  it("replaces kube-proxy and reaches the API through the VIP of the plan", () => {
    for (const plan of [standard, moved]) {
      expect(ciliumValues(plan)).toMatchObject({
        kubeProxyReplacement: true,
        k8sServiceHost: plan.apiVip,
        k8sServicePort: 6443,
      });
    }
    expect(ciliumValues(moved).k8sServiceHost).toBe("10.77.5.20");
  });

  it("uses the host's cgroup2 mount instead of mounting its own", () => {
    expect(ciliumValues(standard).cgroup).toEqual({
      autoMount: { enabled: false },
      hostRoot: HOST_CGROUP_ROOT,
    });
  });

  it("allocates pod addresses from the cluster CIDR in per-node blocks of the plan's size", () => {
    expect(ciliumValues(moved).ipam).toEqual({
      mode: "cluster-pool",
      operator: { clusterPoolIPv4PodCIDRList: ["10.244.0.0/16"], clusterPoolIPv4MaskSize: 24 },
    });
    const [control0] = moved.controls;
    expect(control0.podCidr).toBe("10.244.0.0/24");
  });

  it("runs one operator on a one-node cluster and two otherwise", () => {
    expect(ciliumValues(planFor({ controlPlanes: 1, workers: 0 })).operator).toEqual({
      replicas: 1,
    });
    expect(ciliumValues(standard).operator).toEqual({ replicas: 2 });
  });
});

describe("CoreDNS", () => {
  const kubernetesPlugin = (values: Record<string, unknown>) => {
    const [server] = values.servers as { plugins: { name: string; parameters?: unknown }[] }[];
    return server.plugins.find((p) => p.name === "kubernetes");
  };

  it("serves on the plan's cluster DNS address with two replicas", () => {
    expect(corednsValues(standard)).toMatchObject({
      replicaCount: 2,
      service: { clusterIP: "10.32.0.10" },
    });
    expect(corednsValues(moved).service).toEqual({ clusterIP: "10.96.0.10" });
  });

  it("answers for the plan's cluster domain", () => {
    const domainPlan: AddressPlan = { ...standard, clusterDomain: "lab.example" };
    expect(kubernetesPlugin(corednsValues(standard))?.parameters).toBe(
      "cluster.local in-addr.arpa ip6.arpa",
    );
    expect(kubernetesPlugin(corednsValues(domainPlan))?.parameters).toBe(
      "lab.example in-addr.arpa ip6.arpa",
    );
  });

  it("tolerates the control-plane taint only when there are no workers", () => {
    expect(corednsValues(standard)).not.toHaveProperty("tolerations");
    expect(corednsValues(planFor({ workers: 0 })).tolerations).toEqual([
      { key: CONTROL_PLANE_TAINT.key, operator: "Exists", effect: "NoSchedule" },
    ]);
  });
});

describe("MetalLB", () => {
  it("hands out the plan's pool, which follows the subnet", () => {
    expect(metallbPoolSpec(standard)).toEqual({
      addresses: ["192.168.234.200-192.168.234.250"],
    });
    expect(metallbPoolSpec(moved)).toEqual({ addresses: ["10.77.5.200-10.77.5.250"] });
    expect(metallbPoolSpec(planFor({ metallbPool: "192.168.234.180-192.168.234.190" }))).toEqual({
      addresses: ["192.168.234.180-192.168.234.190"],
    });
  });

  it("announces the named pools over layer 2", () => {
    expect(l2AdvertisementSpec(["hardway-pool"])).toEqual({ ipAddressPools: ["hardway-pool"] });
  });

  it("leaves the frr-k8s BGP backend out of a layer-2 install", () => {
    expect(metallbValues(standard)).toEqual({ frrk8s: { enabled: false }, controller: {} });
  });
});

describe("nfs-subdir-external-provisioner", () => {
  it("mounts the host's export from the host address of the plan", () => {
    expect(nfsProvisionerValues({ plan: standard, exportDir: EXPORT_DIR }).nfs).toEqual({
      server: "192.168.234.1",
      path: EXPORT_DIR,
    });
    expect(nfsProvisionerValues({ plan: moved, exportDir: EXPORT_DIR }).nfs).toEqual({
      server: "10.77.5.1",
      path: EXPORT_DIR,
    });
  });

  it("makes its StorageClass the default", () => {
    expect(nfsProvisionerValues({ plan: standard, exportDir: EXPORT_DIR }).storageClass).toEqual({
      name: "nfs",
      defaultClass: true,
    });
  });

  it("refuses a relative export path, which the NFS server could not resolve", () => {
    expect(() => nfsProvisionerValues({ plan: standard, exportDir: "nfs" })).toThrow(
      'exportDir must be an absolute path on the host (got "nfs")',
    );
  });
});
