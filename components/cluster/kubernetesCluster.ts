/**
 * Kubernetes on the VMs (chapters 5-6 of the guide): release artifacts fetched once on the host,
 * etcd, the control plane, the API load balancer, then on every kubelet node the container
 * runtime, kubelet and (with the bridge CNI) kube-proxy and the host's pod routes. This
 * component only wires; each step is its own component.
 */
import * as pulumi from "@pulumi/pulumi";
import { local } from "@pulumi/command";
import { HardwayConfig } from "../config/schema";
import { artifacts } from "../kubernetes/artifacts";
import { HostOs } from "../kubernetes/podRoutes";
import { AddressPlan } from "../network/addressPlan";
import { ApiLoadBalancer } from "./apiLoadBalancer";
import { ArtifactCache } from "./artifactCache";
import { ControlPlane } from "./controlPlane";
import { Etcd } from "./etcd";
import { KubeProxy } from "./kubeProxy";
import { Kubelet } from "./kubelet";
import { NodeRuntime } from "./nodeRuntime";
import { NodeScripts } from "./nodeScripts";
import { PkiMaterial } from "./pkiFiles";
import { PodRoutes } from "./podRoutes";

export interface KubernetesClusterArgs {
  /** Versions, architecture, runtime and CNI choose the artifacts and the steps. */
  readonly config: Pick<HardwayConfig, "versions" | "arch" | "containerRuntime" | "cni">;
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  /** Names the cluster in etcd's initial token and the controller-manager's flags. */
  readonly clusterName: string;
  /** Per node name, the VM every step on that node waits for. */
  readonly vmReady: Readonly<Record<string, pulumi.Resource>>;
  /** Decides the syntax of the host's pod routes. */
  readonly hostOs: HostOs;
  /** The host network: pod routes go through its bridge. @default none */
  readonly networkReady?: pulumi.Resource;
  /**
   * The host's artifact cache directory.
   * @default `${XDG_CACHE_HOME:-~/.cache}/hardway/artifacts`
   */
  readonly cacheDir?: string;
  /**
   * The uid running Pulumi; root needs no sudo for the pod routes.
   * @default process.getuid()
   */
  readonly uid?: number;
}

export class KubernetesCluster extends pulumi.ComponentResource {
  readonly etcd: Etcd;
  readonly controlPlane: ControlPlane;
  readonly apiLoadBalancer: ApiLoadBalancer;
  /** Completes once https://<VIP>:6443/healthz answers `ok` through the load balancer. */
  readonly apiHealth: local.Command;
  readonly kubelet: Kubelet;

  constructor(name: string, args: KubernetesClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:KubernetesCluster", name, {}, opts);
    const { config, plan, pki } = args;
    const parent = { parent: this };
    const scripts = new NodeScripts(
      `${name}-scripts`,
      { nodes: plan.nodes, privateKey: pki.ssh.privateKey, vmReady: args.vmReady },
      parent,
    );
    const cache = new ArtifactCache(
      `${name}-artifacts`,
      { artifacts: artifacts(config), cacheDir: args.cacheDir },
      parent,
    );
    const common = { plan, pki, scripts, artifacts: cache };
    this.etcd = new Etcd(`${name}-etcd`, { ...common, clusterToken: args.clusterName }, parent);
    this.controlPlane = new ControlPlane(
      `${name}-control`,
      { ...common, etcdHealth: this.etcd.health, clusterName: args.clusterName },
      parent,
    );
    this.apiLoadBalancer = new ApiLoadBalancer(
      `${name}-api`,
      { plan, pki, scripts, apiServers: this.controlPlane.apiServers },
      parent,
    );
    this.apiHealth = this.apiLoadBalancer.health;
    const runtime = new NodeRuntime(
      `${name}-runtime`,
      {
        nodes: plan.kubeletNodes,
        runtime: config.containerRuntime,
        cni: config.cni,
        scripts,
        artifacts: cache,
      },
      parent,
    );
    this.kubelet = new Kubelet(
      `${name}-kubelet`,
      {
        ...common,
        runtime: config.containerRuntime,
        cni: config.cni,
        runtimeSteps: Object.fromEntries(
          Object.entries(runtime.nodes).map(([node, steps]) => [node, steps.runtime]),
        ),
        apiHealth: this.apiHealth,
      },
      parent,
    );
    // Cilium replaces kube-proxy and routes pod traffic itself (installed with the services).
    if (config.cni === "bridge") {
      new KubeProxy(`${name}-kube-proxy`, common, parent);
      new PodRoutes(
        `${name}-routes`,
        { plan, hostOs: args.hostOs, uid: args.uid, networkReady: args.networkReady },
        parent,
      );
    }
    this.registerOutputs({ apiHealth: this.apiHealth.stdout });
  }
}
