/**
 * ClusterServices: what chapters 7-8 install through the Kubernetes API once it answers on the
 * VIP: the apiserver-to-kubelet RBAC, Cilium (with cni=cilium), CoreDNS, MetalLB with its address
 * pool, the NFS provisioner as the default StorageClass, and the control-plane role label.
 *
 * Preview on a brand-new stack: the provider's kubeconfig is the admin kubeconfig joined with
 * `apiReady`, which is unknown until the API health step has run. The Pulumi engine does not
 * configure a provider whose inputs are unknown during a preview and answers Check/Diff/Create
 * for its resources from their inputs, so nothing tries to reach a cluster that is not there.
 *
 * Later updates: the provider is named by `clusterIdentifier`, so a new kubeconfig (a renewed
 * admin certificate) updates it instead of replacing it and every release with it.
 *
 * Destroy: every object here lives in etcd, so when the etcd step goes (`pulumi destroy`, or a
 * `stopAfter` below the control plane) they go with it (`deletedWith`) and nothing asks a cluster
 * that may already be stopped. Only a change that keeps etcd (`stopAfter` nodes, a chart
 * removed) deletes objects one by one, through an API that answers. The provider does not set
 * `deleteUnreachable`: with the VMs stopped a `pulumi refresh` would drop every object from the
 * state although it still exists.
 */
import { APISERVER_KUBELET_CLIENT } from "../pki/certificates";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Cni, Versions } from "../config/schema";
import { AddressPlan } from "../network/addressPlan";
import {
  ADDONS_NAMESPACE,
  CONTROL_PLANE_ROLE_LABEL,
  HelmValues,
  METALLB_L2_NAME,
  METALLB_POOL_NAME,
  ciliumValues,
  corednsValues,
  l2AdvertisementSpec,
  metallbPoolSpec,
  metallbValues,
  nfsProvisionerValues,
} from "./values";

export type Charts = Versions["charts"];
type ChartRef = Charts[keyof Charts];

/** The CN of the client certificate kube-apiserver presents to kubelets. */
export const APISERVER_KUBELET_CLIENT_USER = APISERVER_KUBELET_CLIENT;
/** Built-in ClusterRole for the kubelet API: proxy, logs, exec, stats. */
export const KUBELET_API_ADMIN_ROLE = "system:kubelet-api-admin";

/** Seconds Helm waits for a release's resources; Cilium pulls the most and starts the slowest. */
export const RELEASE_TIMEOUTS = {
  cilium: 900,
  coredns: 600,
  metallb: 600,
  nfsProvisioner: 600,
} as const;

export interface ClusterServicesArgs {
  readonly plan: AddressPlan;
  /** Cilium is installed only for `cilium`; with `bridge` the node CNI and kube-proxy serve. */
  readonly cni: Cni;
  /** Pinned repository, chart and version of each release (config `versions.charts`). */
  readonly charts: Charts;
  /** The admin kubeconfig. It reaches the provider as a secret whether or not it is one here. */
  readonly kubeconfig: pulumi.Input<string>;
  /**
   * The API health step (ApiLoadBalancer.health) as a resource, or one of its outputs. An Output
   * or a custom resource also keeps the kubeconfig unknown during the first preview; a component
   * resource only orders the provider after it.
   */
  readonly apiReady: pulumi.Input<unknown>;
  /** The host directory exported over NFS (HostNetwork.exportDir). */
  readonly nfsPath: pulumi.Input<string>;
  /**
   * The kubelet step of each node, by node name (Kubelet.nodes). Releases wait for all of them
   * and each control node's label waits for its own.
   * @default {} (ordering then rests on apiReady alone)
   */
  readonly kubelets?: Readonly<Record<string, pulumi.Resource>>;
  /** Names the cluster for the provider (KubernetesClusterArgs.clusterName). */
  readonly clusterName: string;
  /** The etcd step (Etcd.members): every Kubernetes object here is deleted with it. */
  readonly clusterData: pulumi.Resource;
}

export interface ClusterServicesReleases {
  readonly cilium?: k8s.helm.v3.Release;
  readonly coredns: k8s.helm.v3.Release;
  readonly metallb: k8s.helm.v3.Release;
  readonly nfsProvisioner: k8s.helm.v3.Release;
}

export class ClusterServices extends pulumi.ComponentResource {
  /** Every Kubernetes resource here goes through this provider. */
  readonly provider: k8s.Provider;
  readonly kubeletApiAccess: k8s.rbac.v1.ClusterRoleBinding;
  readonly releases: ClusterServicesReleases;
  readonly metallbPool: k8s.apiextensions.CustomResource;
  readonly l2Advertisement: k8s.apiextensions.CustomResource;
  /** By control node name. */
  readonly controlPlaneLabels: Readonly<Record<string, k8s.core.v1.NodePatch>>;

  constructor(name: string, args: ClusterServicesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:addons:ClusterServices", name, {}, opts);
    const { plan, charts } = args;
    const kubelets = args.kubelets ?? {};
    const missing = plan.controls.filter((n) => args.kubelets && !(n.name in kubelets));
    if (missing.length > 0) {
      throw new pulumi.ResourceError(
        `kubelets has no entry for ${missing.map((n) => n.name).join(", ")}; pass Kubelet.nodes`,
        this,
      );
    }
    const apiReadyResource = pulumi.Resource.isInstance(args.apiReady) ? args.apiReady : undefined;
    const gate: pulumi.Input<unknown> =
      apiReadyResource === undefined
        ? args.apiReady
        : pulumi.CustomResource.isInstance(apiReadyResource)
          ? apiReadyResource.id
          : apiReadyResource.urn;

    this.provider = new k8s.Provider(
      `${name}-k8s`,
      {
        kubeconfig: pulumi
          .all([pulumi.secret(args.kubeconfig), gate])
          .apply(([kubeconfig]) => kubeconfig),
        // Only a new cluster name replaces the provider (and so every object through it).
        clusterIdentifier: args.clusterName,
        // Patch resources (the node labels) exist only under server-side apply.
        enableServerSideApply: true,
      },
      { parent: this, dependsOn: apiReadyResource ? [apiReadyResource] : [] },
    );
    const k8sOpts = (dependsOn: pulumi.Resource[] = []): pulumi.CustomResourceOptions => ({
      provider: this.provider,
      parent: this,
      dependsOn,
      deletedWith: args.clusterData,
    });

    this.kubeletApiAccess = new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-kubelet-api-admin`,
      {
        metadata: { name: `hardway:${APISERVER_KUBELET_CLIENT}` },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: KUBELET_API_ADMIN_ROLE,
        },
        subjects: [
          {
            apiGroup: "rbac.authorization.k8s.io",
            kind: "User",
            name: APISERVER_KUBELET_CLIENT_USER,
          },
        ],
      },
      k8sOpts(),
    );

    const allKubelets = Object.values(kubelets);
    const release = (
      key: keyof Charts,
      releaseName: string,
      values: pulumi.Input<HelmValues>,
      after: pulumi.Resource[],
    ) =>
      new k8s.helm.v3.Release(
        `${name}-${releaseName}`,
        releaseArgs(releaseName, charts[key], values, RELEASE_TIMEOUTS[key]),
        k8sOpts([...allKubelets, ...after]),
      );

    const cilium =
      args.cni === "cilium" ? release("cilium", "cilium", ciliumValues(plan), []) : undefined;
    // Every other workload needs pod networking, which with Cilium exists only once it runs.
    const afterCni = cilium ? [cilium] : [];
    const coredns = release("coredns", "coredns", corednsValues(plan), afterCni);
    const metallb = release("metallb", "metallb", metallbValues(plan), afterCni);
    const nfsProvisioner = release(
      "nfsProvisioner",
      "nfs-provisioner",
      pulumi.output(args.nfsPath).apply((exportDir) => nfsProvisionerValues({ plan, exportDir })),
      afterCni,
    );
    this.releases = { cilium, coredns, metallb, nfsProvisioner };

    // MetalLB's admission webhook rejects pools until its controller is up; the release waits for
    // that (skipAwait is false), so the pool follows the release rather than racing it.
    this.metallbPool = new k8s.apiextensions.CustomResource(
      `${name}-metallb-pool`,
      {
        apiVersion: "metallb.io/v1beta1",
        kind: "IPAddressPool",
        metadata: { name: METALLB_POOL_NAME, namespace: ADDONS_NAMESPACE },
        spec: metallbPoolSpec(plan),
      },
      k8sOpts([metallb]),
    );
    this.l2Advertisement = new k8s.apiextensions.CustomResource(
      `${name}-metallb-l2`,
      {
        apiVersion: "metallb.io/v1beta1",
        kind: "L2Advertisement",
        metadata: { name: METALLB_L2_NAME, namespace: ADDONS_NAMESPACE },
        spec: this.metallbPool.metadata.name.apply((pool) => l2AdvertisementSpec([pool])),
      },
      k8sOpts([metallb]),
    );

    // A patch is a server-side apply, which creates a Node that does not exist yet; the kubelet
    // would then find it taken and never add its registerWithTaints. So each label waits for its
    // node's kubelet step and for CoreDNS to be ready, which takes at least its 30 s readiness
    // delay after nodes (started alongside this one) have registered.
    const labels: Record<string, k8s.core.v1.NodePatch> = {};
    for (const node of plan.controls) {
      const kubelet = kubelets[node.name];
      labels[node.name] = new k8s.core.v1.NodePatch(
        `${name}-role-${node.name}`,
        { metadata: { name: node.name, labels: { [CONTROL_PLANE_ROLE_LABEL]: "" } } },
        k8sOpts([...(kubelet ? [kubelet] : []), coredns]),
      );
    }
    this.controlPlaneLabels = labels;

    this.registerOutputs({
      cilium: cilium?.status,
      coredns: coredns.status,
      metallb: metallb.status,
      nfsProvisioner: nfsProvisioner.status,
    });
  }
}

/**
 * Helm release settings: pinned chart, fixed release name (CoreDNS's Service and the provisioner
 * name derive from it), and a wait for readiness that undoes a release which never got there, so
 * the next `pulumi up` installs it afresh instead of upgrading a broken one.
 */
export function releaseArgs(
  releaseName: string,
  chart: ChartRef,
  values: pulumi.Input<HelmValues>,
  timeoutSeconds: number,
): k8s.helm.v3.ReleaseArgs {
  return {
    name: releaseName,
    namespace: ADDONS_NAMESPACE,
    chart: chart.chart,
    version: chart.version,
    repositoryOpts: { repo: chart.repository },
    values,
    skipAwait: false,
    atomic: true,
    timeout: timeoutSeconds,
  };
}
