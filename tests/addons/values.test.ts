/**
 * Helm is not installed where these tests run, so the values are checked as data: every key we
 * set must be one the pinned chart's values.yaml has (a misspelt key, such as the guide's
 * `cgroup.automount`, would be silently ignored by Helm), and every address must come from the
 * address plan, which the tests move by changing the subnet and CIDRs. The Cilium and MetalLB
 * charts ship inside their Go modules, so their own values.yaml is read from there; the NFS
 * provisioner's chart is in no module the Go proxy serves, so its keys are listed by hand.
 */
import { parseConfig } from "../../components/config/schema";
import { EMULATED_LEADER_ELECTION } from "../../components/kubernetes/controlPlane";
import { itIfAvailable, missingPrograms } from "../harness/prerequisites";
import { AddressPlan, addressPlan } from "../../components/network/addressPlan";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { defaultVersions } from "../../components/config/defaults";
import {
  HOST_CGROUP_ROOT,
  HelmValues,
  ciliumAgentsPath,
  ciliumValues,
  collectionPath,
  l2AdvertisementSpec,
  metallbPool,
  metallbPoolSpec,
  metallbValues,
  nfsProvisionerValues,
  overlayValues,
} from "../../components/addons/values";
import { METALLB_RUN_VERSION } from "../e2e/serviceArtifacts";

const HOST = { os: "linux", cpu: "x64" } as const;
const planFor = (raw: Record<string, unknown>): AddressPlan => addressPlan(parseConfig(raw, HOST));

const standard = planFor({});
const moved = planFor({
  subnet: "10.77.5.0/24",
  clusterCidr: "10.244.0.0/16",
  serviceCidr: "10.96.0.0/16",
});
const EXPORT_DIR = "/home/me/.hardway/test/nfs";

/** Leaf keys nfs-subdir-external-provisioner 4.0.18's values.yaml documents, of those we set. */
const NFS_DOCUMENTED = [
  "nfs.server",
  "nfs.path",
  "storageClass.name",
  "storageClass.defaultClass",
  "tolerations",
];

/** Where each chart lies inside the Go module that ships it. */
const CHART_MODULES = {
  cilium: {
    module: `github.com/cilium/cilium@v${defaultVersions.charts.cilium.version}`,
    dir: "install/kubernetes/cilium",
  },
  metallb: {
    module: `go.universe.tf/metallb@v${defaultVersions.charts.metallb.version}`,
    dir: "charts/metallb",
  },
  // The release the e2e installs where the pin cannot be built (tests/e2e/serviceArtifacts.ts).
  metallbRun: { module: `go.universe.tf/metallb@v${METALLB_RUN_VERSION}`, dir: "charts/metallb" },
} as const;

/** A chart's module's source directory (downloaded once into Go's module cache). */
function chartModuleDir(chart: keyof typeof CHART_MODULES): string {
  const { module } = CHART_MODULES[chart];
  const found = spawnSync("go", ["mod", "download", "-json", module], {
    encoding: "utf8",
    env: { ...process.env, GOFLAGS: "-mod=mod" },
  });
  if (found.status !== 0) {
    throw new Error(`go mod download ${module} failed: ${found.stdout}${found.stderr}`);
  }
  return (JSON.parse(found.stdout) as { Dir: string }).Dir;
}

const ciliumModuleDir = () => chartModuleDir("cilium");

/** The chart's values.yaml from its module. */
function chartValues(chart: keyof typeof CHART_MODULES): unknown {
  const file = path.join(chartModuleDir(chart), CHART_MODULES[chart].dir, "values.yaml");
  return parse(fs.readFileSync(file, "utf8"));
}

/** Dotted paths of every leaf; a list is a leaf, as Helm replaces lists whole. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return [prefix];
  }
  return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

describe("keys", () => {
  itIfAvailable(
    missingPrograms(["go"]),
    "sets only keys the pinned Cilium and MetalLB charts (and the e2e's MetalLB) have in their values.yaml",
    () => {
      const set = {
        cilium: keyPaths(
          ciliumValues(planFor({ workers: 0 }), { metallb: true }, EMULATED_LEADER_ELECTION),
        ),
        metallb: keyPaths(metallbValues(planFor({ workers: 0 }), 300)),
        metallbRun: keyPaths(metallbValues(planFor({ workers: 0 }), 300)),
      };
      for (const chart of ["cilium", "metallb", "metallbRun"] as const) {
        const chartKeys = new Set(keyPaths(chartValues(chart)));
        // Keys whose chart default is a list or an empty map are leaves there too.
        const unknown = set[chart].filter(
          (key) => !chartKeys.has(key) && !chartKeys.has(key.split(".").slice(0, -1).join(".")),
        );
        expect({ chart, unknown }).toEqual({ chart, unknown: [] });
      }
    },
    120_000,
  );

  it("sets only keys the NFS provisioner's chart documents", () => {
    const values = nfsProvisionerValues({ plan: planFor({ workers: 0 }), exportDir: EXPORT_DIR });
    expect(keyPaths(values).filter((key) => !NFS_DOCUMENTED.includes(key))).toEqual([]);
  });
});

describe("Cilium", () => {
  it("replaces kube-proxy and reaches the API through the VIP of the plan", () => {
    for (const plan of [standard, moved]) {
      expect(ciliumValues(plan, { metallb: true })).toMatchObject({
        kubeProxyReplacement: true,
        k8sServiceHost: plan.apiVip,
        k8sServicePort: 6443,
      });
    }
    expect(ciliumValues(moved, { metallb: true }).k8sServiceHost).toBe("10.77.5.20");
  });

  it("uses the host's cgroup2 mount instead of mounting its own", () => {
    expect(ciliumValues(standard, { metallb: true }).cgroup).toEqual({
      autoMount: { enabled: false },
      hostRoot: HOST_CGROUP_ROOT,
    });
  });

  it("allocates pod addresses from the cluster CIDR in per-node blocks of the plan's size", () => {
    expect(ciliumValues(moved, { metallb: true }).ipam).toEqual({
      mode: "cluster-pool",
      operator: { clusterPoolIPv4PodCIDRList: ["10.244.0.0/16"], clusterPoolIPv4MaskSize: 24 },
    });
    const [control0] = moved.controls;
    expect(control0.podCidr).toBe("10.244.11.0/24");
  });

  it("leaves LoadBalancer addresses to MetalLB when MetalLB is installed", () => {
    expect(ciliumValues(standard, { metallb: true }).enableLBIPAM).toBe(false);
    expect(ciliumValues(standard, { metallb: false })).not.toHaveProperty("enableLBIPAM");
  });

  it("runs one operator on a one-node cluster and two otherwise", () => {
    expect(
      ciliumValues(planFor({ controlPlanes: 1, workers: 0 }), { metallb: true }).operator,
    ).toEqual({
      replicas: 1,
    });
    expect(ciliumValues(standard, { metallb: true }).operator).toEqual({ replicas: 2 });
  });

  it("gives the operator the controller manager's lease timing on emulated nodes", () => {
    expect(ciliumValues(standard, { metallb: true }, EMULATED_LEADER_ELECTION).operator).toEqual({
      replicas: 2,
      extraArgs: [
        "--leader-election-lease-duration=180s",
        "--leader-election-renew-deadline=120s",
        "--leader-election-retry-period=10s",
      ],
    });
  });

  it("finds the agents' DaemonSet by the chart's name value, cilium unless the stack renames it", () => {
    expect(ciliumAgentsPath(ciliumValues(standard, { metallb: true }))).toBe(
      "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium",
    );
    expect(
      ciliumAgentsPath(
        overlayValues(ciliumValues(standard, { metallb: true }), { name: "agents" }),
      ),
    ).toBe("/apis/apps/v1/namespaces/kube-system/daemonsets/agents");
    expect(ciliumAgentsPath({ name: "" })).toMatch(/\/daemonsets\/cilium$/);
  });

  itIfAvailable(
    missingPrograms(["go"]),
    "names the agents' DaemonSet as the pinned chart does",
    () => {
      const chart = path.join(ciliumModuleDir(), "install/kubernetes/cilium");
      const daemonSet = fs.readFileSync(
        path.join(chart, "templates/cilium-agent/daemonset.yaml"),
        "utf8",
      );
      expect(daemonSet).toMatch(/kind: DaemonSet\nmetadata:\n {2}name: \{\{ \.Values\.name \}\}\n/);
      expect(fs.readFileSync(path.join(chart, "values.yaml"), "utf8")).toMatch(/^name: cilium$/m);
    },
    120_000,
  );

  itIfAvailable(
    missingPrograms(["go"]),
    "names leader election flags the operator of the pinned module declares",
    () => {
      const args = ciliumValues(standard, { metallb: true }, EMULATED_LEADER_ELECTION).operator as {
        extraArgs: string[];
      };
      const source = fs.readFileSync(
        path.join(ciliumModuleDir(), "operator/cmd/leader_election.go"),
        "utf8",
      );
      for (const flag of args.extraArgs.map((a) => a.replace(/^--([a-z-]+)=.*$/, "$1"))) {
        expect(source).toContain(`flags.Duration("${flag}"`);
      }
    },
    120_000,
  );
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

  it("names the pool object, and where a create of it is posted", () => {
    const pool = metallbPool(moved);
    expect(pool).toEqual({
      apiVersion: "metallb.io/v1beta1",
      kind: "IPAddressPool",
      metadata: { name: "hardway-pool", namespace: "kube-system" },
      spec: { addresses: ["10.77.5.200-10.77.5.250"] },
    });
    expect(collectionPath(pool.apiVersion, "kube-system", "ipaddresspools")).toBe(
      "/apis/metallb.io/v1beta1/namespaces/kube-system/ipaddresspools",
    );
    // Core types live under /api, without a group.
    expect(collectionPath("v1", "default", "configmaps")).toBe(
      "/api/v1/namespaces/default/configmaps",
    );
  });

  it("announces the named pools over layer 2", () => {
    expect(l2AdvertisementSpec(["hardway-pool"])).toEqual({ ipAddressPools: ["hardway-pool"] });
  });

  it("leaves both BGP backends (frr-k8s, FRR beside the speaker) out of a layer-2 install", () => {
    expect(metallbValues(standard)).toEqual({
      frrk8s: { enabled: false },
      controller: {},
      speaker: { frr: { enabled: false } },
    });
  });

  it("holds the controller's and the speakers' liveness probes back when asked (emulated nodes)", () => {
    const values = metallbValues(standard, 300) as {
      controller: HelmValues;
      speaker: HelmValues;
    };
    expect(values.controller.livenessProbe).toEqual({ initialDelaySeconds: 300 });
    expect(values.speaker).toEqual({
      frr: { enabled: false },
      livenessProbe: { initialDelaySeconds: 300 },
    });
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

describe("overlayValues", () => {
  it("merges objects key by key, as Helm lays a values file over a chart's defaults", () => {
    const ours = { a: { b: 1, c: { d: 2 } }, list: [1, 2], keep: "x" };
    const theirs = { a: { c: { e: 3 } }, list: [9], added: { f: true } };
    expect(overlayValues(ours, theirs)).toEqual({
      a: { b: 1, c: { d: 2, e: 3 } },
      list: [9],
      keep: "x",
      added: { f: true },
    });
    // Neither argument changes.
    expect(ours).toEqual({ a: { b: 1, c: { d: 2 } }, list: [1, 2], keep: "x" });
  });

  it("replaces anything that is not an object on both sides, null and lists included", () => {
    expect(
      overlayValues({ a: { b: 1 }, c: 1, d: [1] }, { a: null, c: { x: 1 }, d: { y: 2 } }),
    ).toEqual({
      a: null,
      c: { x: 1 },
      d: { y: 2 },
    });
    expect(overlayValues({ a: 1 }, {})).toEqual({ a: 1 });
  });
});
