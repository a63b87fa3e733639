/**
 * Kubernetes on the VMs (chapters 5-6 of the guide): release artifacts fetched once on the host,
 * etcd, the control plane and the API load balancer; then, unless the stack stops after the
 * control plane, on every kubelet node the container runtime, the kubelet and (with the bridge
 * CNI) kube-proxy and the host's pod routes. This component only wires; each step is its own
 * component.
 */
import * as pulumi from "@pulumi/pulumi";
import { HardwayConfig } from "../config/schema";
import { EnsuredScript } from "../host/ensured";
import { artifacts } from "../kubernetes/artifacts";
import { EMULATED_API_REQUEST_TIMEOUT_SECONDS } from "../kubernetes/controlPlane";
import { EMULATED_ETCD_TIMING } from "../kubernetes/etcd";
import { AddressPlan } from "../network/addressPlan";
import { ApiLoadBalancer } from "./apiLoadBalancer";
import { ArtifactCache } from "./artifactCache";
import { ControlPlane } from "./controlPlane";
import { Etcd } from "./etcd";
import { KubeProxy } from "./kubeProxy";
import { Kubelet } from "./kubelet";
import { NodeRuntime } from "./nodeRuntime";
import { ClusterNodes } from "./nodeStep";
import { PkiMaterial } from "./pkiFiles";
import { PodImages } from "./podImages";
import { PodRoutes } from "./podRoutes";

export interface KubernetesClusterArgs {
  /** Versions, architecture, runtime and CNI choose the artifacts and the steps. */
  readonly config: Pick<
    HardwayConfig,
    "versions" | "arch" | "containerRuntime" | "cni" | "releaseMirror" | "podImages"
  >;
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  /** Names the cluster in etcd's initial token and the controller-manager's flags. */
  readonly clusterName: string;
  /** How steps reach each VM (login, host keys, instance ids). */
  readonly nodes: ClusterNodes;
  /**
   * "controlPlane" stops after etcd, the API servers and the load balancer; "nodes" goes on
   * with the runtimes, kubelets and pod networking.
   * @default "nodes"
   */
  readonly through?: "controlPlane" | "nodes";
  /** The host network: pod routes go through its bridge. @default none */
  readonly networkReady?: pulumi.Resource;
  /**
   * The host's artifact cache directory.
   * @default `${XDG_CACHE_HOME:-~/.cache}/hardway/artifacts`
   */
  readonly cacheDir?: string;
  /**
   * The VMs run emulated (TCG): etcd gets Raft timing that tolerates slow members, and the API
   * servers a longer request timeout.
   */
  readonly emulated?: boolean;
}

export class KubernetesCluster extends pulumi.ComponentResource {
  readonly etcd: Etcd;
  readonly controlPlane: ControlPlane;
  readonly apiLoadBalancer: ApiLoadBalancer;
  /** Completes once https://<VIP>:6443/healthz answers `ok` through the load balancer. */
  readonly apiHealth: EnsuredScript;
  /** Absent when the stack stops after the control plane. */
  readonly kubelet?: Kubelet;

  constructor(name: string, args: KubernetesClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:KubernetesCluster", name, {}, opts);
    const { config, plan, pki, nodes } = args;
    const parent = { parent: this };
    const cache = new ArtifactCache(
      `${name}-artifacts`,
      { artifacts: artifacts(config), holder: args.clusterName, cacheDir: args.cacheDir },
      parent,
    );
    const common = { plan, pki, nodes, artifacts: cache };
    this.etcd = new Etcd(
      `${name}-etcd`,
      {
        ...common,
        clusterToken: args.clusterName,
        timing: args.emulated ? EMULATED_ETCD_TIMING : undefined,
      },
      parent,
    );
    this.controlPlane = new ControlPlane(
      `${name}-control`,
      {
        ...common,
        etcd: this.etcd.members,
        clusterName: args.clusterName,
        apiRequestTimeoutSeconds: args.emulated ? EMULATED_API_REQUEST_TIMEOUT_SECONDS : undefined,
      },
      parent,
    );
    this.apiLoadBalancer = new ApiLoadBalancer(
      `${name}-api`,
      { plan, pki, nodes, apiServers: this.controlPlane.apiServers },
      parent,
    );
    this.apiHealth = this.apiLoadBalancer.health;
    if ((args.through ?? "nodes") === "nodes") {
      const runtime = new NodeRuntime(
        `${name}-runtime`,
        {
          nodes: plan.kubeletNodes,
          runtime: config.containerRuntime,
          cni: config.cni,
          cluster: nodes,
          artifacts: cache,
        },
        parent,
      );
      const runtimeSteps = Object.fromEntries(
        Object.entries(runtime.nodes).map(([node, steps]) => [node, steps.runtime]),
      );
      this.kubelet = new Kubelet(
        `${name}-kubelet`,
        { ...common, runtime: config.containerRuntime, cni: config.cni, runtimeSteps },
        parent,
      );
      if (config.podImages.length > 0) {
        new PodImages(
          `${name}-images`,
          {
            plan,
            nodes,
            runtime: config.containerRuntime,
            archives: config.podImages,
            runtimeSteps,
          },
          parent,
        );
      }
      // Cilium replaces kube-proxy and routes pod traffic itself (installed with the services).
      if (config.cni === "bridge") {
        new KubeProxy(`${name}-kube-proxy`, common, parent);
        new PodRoutes(`${name}-routes`, { plan, networkReady: args.networkReady }, parent);
      }
    }
    this.registerOutputs({});
  }
}
