/**
 * Helm values and MetalLB custom resource specs for the cluster services of chapters 7-8, as
 * plain functions of the address plan. Every key below exists in the pinned chart's values.yaml
 * (cilium 1.20.2, metallb 0.16.2, nfs-subdir-external-provisioner 4.0.18). CoreDNS is not a
 * chart here: coredns.ts has its objects.
 */
import { LeaderElectionTiming } from "../kubernetes/controlPlane";
import { CONTROL_PLANE_TAINT } from "../kubernetes/kubelet";
import { AddressPlan } from "../network/addressPlan";
import { parseCidr } from "../network/ipv4";

/** The guide installs every service into kube-system; so do we. */
export const ADDONS_NAMESPACE = "kube-system";

/** kubelets may not set node-role.kubernetes.io/* on themselves under NodeRestriction. */
export const CONTROL_PLANE_ROLE_LABEL = "node-role.kubernetes.io/control-plane";

/** Ubuntu 24.04 boots with the unified cgroup v2 hierarchy already mounted here. */
export const HOST_CGROUP_ROOT = "/sys/fs/cgroup";

export const DEFAULT_STORAGE_CLASS = "nfs";

export const METALLB_POOL_NAME = "hardway-pool";
export const METALLB_L2_NAME = "hardway-l2";

export type HelmValues = Record<string, unknown>;

const isObject = (v: unknown): v is HelmValues =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * `theirs` (config `chartValues.<release>`) laid over `ours`, as Helm lays a values file over a
 * chart's defaults: objects merge key by key, anything else (a list, a string, null) replaces
 * our value. Pure; neither argument changes.
 */
export function overlayValues(ours: HelmValues, theirs: Readonly<HelmValues>): HelmValues {
  const merged: HelmValues = { ...ours };
  for (const [key, value] of Object.entries(theirs)) {
    const mine = merged[key];
    merged[key] = isObject(mine) && isObject(value) ? overlayValues(mine, value) : value;
  }
  return merged;
}

/**
 * With no workers, control nodes are the only place a Deployment can run, so its pods must
 * tolerate the taint the control kubelets register with; otherwise they stay off control nodes.
 */
function controlPlaneTolerations(plan: AddressPlan): HelmValues {
  if (plan.workers.length > 0) {
    return {};
  }
  return {
    tolerations: [
      { key: CONTROL_PLANE_TAINT.key, operator: "Exists", effect: CONTROL_PLANE_TAINT.effect },
    ],
  };
}

/** The pod network size each node gets, read from the plan rather than assumed. */
function nodePodPrefix(plan: AddressPlan): number {
  const podCidr = plan.kubeletNodes[0]?.podCidr;
  if (podCidr === undefined) {
    throw new Error("the address plan has no kubelet node with a podCidr; Cilium needs one");
  }
  return parseCidr(podCidr).prefix;
}

/**
 * Cilium as CNI and kube-proxy replacement (chapter 8).
 *
 * IPAM: `cluster-pool`, carved from the plan's clusterCidr in per-node blocks of the plan's
 * podCidr size. `kubernetes` IPAM would read node.spec.podCIDR, but nothing sets it here:
 * kube-controller-manager runs with --allocate-node-cidrs=false, and a kubelet's podCIDR setting
 * only applies in standalone mode. So the operator hands out the /24s; which node gets which
 * may differ from the plan's podCidr, which matters only for the bridge CNI's host routes.
 *
 * With MetalLB beside it, Cilium's own LoadBalancer IPAM is off (`enableLBIPAM: false`): both
 * would otherwise assign Service addresses, and Cilium's operator has cleared addresses another
 * IPAM gave (cilium/cilium#39805). MetalLB then assigns them and answers ARP for them.
 *
 * Without kube-proxy nothing serves the `kubernetes` Service before Cilium runs, so the agent
 * talks to the API through the load balancer's VIP. The guide's `cgroup.automount` is not a key
 * of the chart (it is `autoMount`); the host already mounts cgroup2, so automount is off.
 *
 * `leaderElection` (emulated nodes): the operator's lease timing, as the controller manager's.
 * With its defaults (15 s lease, 10 s to renew, 5 s per request) an emulated cluster's operator
 * lost its lease while the agents started and exited, again and again, and no node got a pod
 * network (measured: the e2e's Cilium run).
 */
export function ciliumValues(
  plan: AddressPlan,
  beside: { readonly metallb: boolean },
  leaderElection?: LeaderElectionTiming,
): HelmValues {
  const operatorArgs =
    leaderElection === undefined
      ? {}
      : {
          extraArgs: [
            `--leader-election-lease-duration=${leaderElection.leaseDurationSeconds}s`,
            `--leader-election-renew-deadline=${leaderElection.renewDeadlineSeconds}s`,
            `--leader-election-retry-period=${leaderElection.retryPeriodSeconds}s`,
          ],
        };
  return {
    kubeProxyReplacement: true,
    k8sServiceHost: plan.apiVip,
    k8sServicePort: plan.apiPort,
    cgroup: { autoMount: { enabled: false }, hostRoot: HOST_CGROUP_ROOT },
    ipam: {
      mode: "cluster-pool",
      operator: {
        clusterPoolIPv4PodCIDRList: [plan.clusterCidr],
        clusterPoolIPv4MaskSize: nodePodPrefix(plan),
      },
    },
    // The operator's replicas repel each other per node; a one-node cluster fits only one.
    operator: { replicas: Math.min(2, plan.kubeletNodes.length), ...operatorArgs },
    ...(beside.metallb ? { enableLBIPAM: false } : {}),
  };
}

/**
 * MetalLB in layer-2 mode, with neither of its BGP backends: the 0.16 chart enables frr-k8s by
 * default (a further DaemonSet), and charts before 0.16 ran FRR itself beside each speaker
 * (`speaker.frr`, three more containers). Both bring images an L2-only lab does not use, which an
 * air-gapped mirror would have to carry. Address pools are not chart values: they are the custom
 * resources below. `livenessDelaySeconds` holds the liveness probes back on slow (emulated) nodes.
 */
export function metallbValues(plan: AddressPlan, livenessDelaySeconds?: number): HelmValues {
  // The chart's liveness probes start 10 s after a container and restart it after three
  // failures 10 s apart.
  const liveness =
    livenessDelaySeconds === undefined
      ? {}
      : { livenessProbe: { initialDelaySeconds: livenessDelaySeconds } };
  return {
    frrk8s: { enabled: false },
    controller: { ...controlPlaneTolerations(plan), ...liveness },
    speaker: { frr: { enabled: false }, ...liveness },
  };
}

/** The IPAddressPool spec (metallb.io/v1beta1): the plan's pool on the VM network. */
export function metallbPoolSpec(plan: AddressPlan): { addresses: string[] } {
  return { addresses: [`${plan.metallbPool.first}-${plan.metallbPool.last}`] };
}

/** The IPAddressPool object itself: what the pool resource creates and the admission wait asks about. */
export function metallbPool(plan: AddressPlan) {
  return {
    apiVersion: "metallb.io/v1beta1",
    kind: "IPAddressPool",
    metadata: { name: METALLB_POOL_NAME, namespace: ADDONS_NAMESPACE },
    spec: metallbPoolSpec(plan),
  };
}

/**
 * The API path of a namespaced collection, where a create is POSTed:
 * `/apis/metallb.io/v1beta1/namespaces/kube-system/ipaddresspools`; core types (`v1`) are under `/api`.
 */
export function collectionPath(apiVersion: string, namespace: string, plural: string): string {
  const root = apiVersion.includes("/") ? "/apis" : "/api";
  return `${root}/${apiVersion}/namespaces/${namespace}/${plural}`;
}

/**
 * The API path of Cilium's agent DaemonSet, the one the host waits for: the chart names it by
 * its `name` value, "cilium" unless a user's chartValues say otherwise. Pure.
 */
export function ciliumAgentsPath(values: Readonly<HelmValues>): string {
  const name = typeof values.name === "string" && values.name !== "" ? values.name : "cilium";
  return `${collectionPath("apps/v1", ADDONS_NAMESPACE, "daemonsets")}/${name}`;
}

/** The L2Advertisement spec (metallb.io/v1beta1): answer ARP for addresses from these pools. */
export function l2AdvertisementSpec(poolNames: readonly string[]): { ipAddressPools: string[] } {
  return { ipAddressPools: [...poolNames] };
}

export interface NfsProvisionerValuesArgs {
  readonly plan: AddressPlan;
  /** The directory the host exports to the VM subnet (HostNetwork.exportDir). */
  readonly exportDir: string;
  /** @default DEFAULT_STORAGE_CLASS */
  readonly storageClassName?: string;
}

/** nfs-subdir-external-provisioner: one subdirectory of the host's export per volume. */
export function nfsProvisionerValues(args: NfsProvisionerValuesArgs): HelmValues {
  if (!args.exportDir.startsWith("/")) {
    throw new Error(`exportDir must be an absolute path on the host (got "${args.exportDir}")`);
  }
  return {
    nfs: { server: args.plan.hostIp, path: args.exportDir },
    storageClass: {
      name: args.storageClassName ?? DEFAULT_STORAGE_CLASS,
      defaultClass: true,
    },
    ...controlPlaneTolerations(args.plan),
  };
}
