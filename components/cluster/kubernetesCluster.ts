/**
 * Kubernetes on the VMs (chapters 5-6 of the guide): release artifacts fetched once on the host
 * and copied to each VM before its steps run (NodeReleases); etcd, the control plane and the API
 * load balancer; then, unless the stack stops after the control plane, on every kubelet node the
 * container runtime, the kubelet and (with the bridge CNI) kube-proxy and the host's pod routes.
 *
 * The steps wait for each other as the version-skew policy asks of an upgrade (no kubelet,
 * kube-proxy, controller manager or scheduler newer than an API server), so an `up` that changes
 * versions follows it: etcd members one at a time, then the API servers one at a time; then the
 * controller managers node after node, and beside them the schedulers node after node, and node
 * by node (control nodes first) a drain when the change is disruptive, the kubelet beside
 * kube-proxy, the uncordon. The runtimes wait for nothing but their VM, and nothing waits that
 * the policy does not ask for, so a first `up` still does the slow parts at once. This
 * component only wires; each step is its own component.
 */
import * as pulumi from "@pulumi/pulumi";
import { HardwayConfig } from "../config/schema";
import { EnsuredScript } from "../host/ensured";
import { minorOf } from "../config/kubernetesSupport";
import { artifacts, nodeArtifacts } from "../kubernetes/artifacts";
import {
  EMULATED_API_REQUEST_TIMEOUT_SECONDS,
  EMULATED_API_START_TIMEOUT_SECONDS,
  EMULATED_ETCD_CHECK_TIMEOUT_SECONDS,
  EMULATED_LEADER_ELECTION,
} from "../kubernetes/controlPlane";
import { EMULATED_ETCD_TIMING } from "../kubernetes/etcd";
import { AddressPlan } from "../network/addressPlan";
import { ApiLoadBalancer } from "./apiLoadBalancer";
import { EMULATED_CHECKS } from "../kubernetes/loadBalancer";
import { ArtifactCache } from "./artifactCache";
import { ControlPlane } from "./controlPlane";
import { Etcd } from "./etcd";
import { KubeProxy } from "./kubeProxy";
import { Kubelet } from "./kubelet";
import { RegistryMirror } from "../kubernetes/runtime";
import { NodeRuntime } from "./nodeRuntime";
import { NodeDrains } from "./nodeDrains";
import { NodeReleases } from "./nodeReleases";
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
  /** How steps reach each VM (login, host keys, instance ids) and what the VMs go with. */
  readonly nodes: ClusterNodes;
  /**
   * "controlPlane" stops after etcd, the API servers and the load balancer; "nodes" goes on
   * with the runtimes, kubelets and pod networking.
   * @default "nodes"
   */
  readonly through?: "controlPlane" | "nodes";
  /** Registries' mirrors for the container runtimes (config `registryMirrors`). @default none */
  readonly registryMirrors?: readonly RegistryMirror[];
  /** The host network: pod routes go through its bridge. @default none */
  readonly networkReady?: pulumi.Resource;
  /**
   * The host's artifact cache directory.
   * @default `${XDG_CACHE_HOME:-~/.cache}/hardway/artifacts`
   */
  readonly cacheDir?: string;
  /**
   * The VMs run emulated (TCG): etcd gets Raft timing that tolerates slow members, the API
   * servers a longer request timeout, the controller managers and schedulers longer leases.
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
  /** Each VM's release files, by node name. */
  readonly releases: Readonly<Record<string, NodeReleases>>;

  constructor(name: string, args: KubernetesClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:KubernetesCluster", name, {}, opts);
    const { config, plan, pki } = args;
    const parent = { parent: this };
    const through = args.through ?? "nodes";
    const all = artifacts(config);
    const cache = new ArtifactCache(
      `${name}-artifacts`,
      { artifacts: all, holder: args.clusterName, cacheDir: args.cacheDir },
      parent,
    );
    // Every VM's release files first; each step on a VM then waits for them, through the VM's
    // instance id that the copy hands on. The workers' copies go at once; the control nodes'
    // one after another, so an upgrade's copies (hundreds of MB, which keep an emulated guest
    // busy for minutes) slow one control plane at a time, never the quorum. The steps that roll
    // over the control nodes take every control node's instance, so they start after the last
    // copy.
    const releases: Record<string, NodeReleases> = {};
    const hosts = { ...args.nodes.hosts };
    let previousControl: NodeReleases | undefined;
    for (const node of [...plan.controls, ...(through === "nodes" ? plan.workers : [])]) {
      const host = args.nodes.hosts[node.name];
      const after = node.role === "control" && previousControl ? [previousControl] : [];
      releases[node.name] = new NodeReleases(
        `${name}-releases-${node.name}`,
        {
          node,
          user: args.nodes.connection.user,
          privateKey: args.nodes.connection.privateKey,
          hostKey: host.hostKey,
          instance: host.instance,
          artifacts: cache.get(
            nodeArtifacts(node.role, all, through).map((a) => a.name),
            this,
          ),
        },
        { parent: this, deletedWith: args.nodes.hostNetwork, dependsOn: after },
      );
      if (node.role === "control") {
        previousControl = releases[node.name];
      }
      hosts[node.name] = { hostKey: host.hostKey, instance: releases[node.name].instance };
    }
    this.releases = releases;
    const nodes: ClusterNodes = { ...args.nodes, hosts };
    const common = { plan, pki, nodes, artifacts: cache };
    this.etcd = new Etcd(
      `${name}-etcd`,
      {
        ...common,
        version: config.versions.etcd,
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
        kubernetesVersion: config.versions.kubernetes,
        clusterName: args.clusterName,
        apiRequestTimeoutSeconds: args.emulated ? EMULATED_API_REQUEST_TIMEOUT_SECONDS : undefined,
        leaderElection: args.emulated ? EMULATED_LEADER_ELECTION : undefined,
        etcdCheckTimeoutSeconds: args.emulated ? EMULATED_ETCD_CHECK_TIMEOUT_SECONDS : undefined,
        apiStartTimeoutSeconds: args.emulated ? EMULATED_API_START_TIMEOUT_SECONDS : undefined,
      },
      parent,
    );
    this.apiLoadBalancer = new ApiLoadBalancer(
      `${name}-api`,
      {
        plan,
        pki,
        nodes,
        apiServers: this.controlPlane.apiServers,
        // The probe is an HTTPS request from a one-vCPU emulated gateway to a loaded guest.
        checks: args.emulated ? EMULATED_CHECKS : undefined,
      },
      parent,
    );
    this.apiHealth = this.apiLoadBalancer.health;
    if (through === "nodes") {
      const runtime = new NodeRuntime(
        `${name}-runtime`,
        {
          nodes: plan.kubeletNodes,
          runtime: config.containerRuntime,
          cni: config.cni,
          cluster: nodes,
          artifacts: cache,
          registryMirrors: args.registryMirrors,
        },
        parent,
      );
      const kubelet = new Kubelet(
        `${name}-kubelet`,
        { ...common, runtime: config.containerRuntime, cni: config.cni },
        parent,
      );
      this.kubelet = kubelet;
      // Cilium replaces kube-proxy and routes pod traffic itself (installed with the services).
      const kubeProxy =
        config.cni === "bridge" ? new KubeProxy(`${name}-kube-proxy`, common, parent) : undefined;
      const drains = new NodeDrains(
        `${name}-drains`,
        {
          nodes,
          via: plan.controls[0],
          clusterData: this.etcd.members,
          // A new minor or another runtime does not keep the node's pods running.
          disruption: {
            kubernetes: minorOf(config.versions.kubernetes),
            runtime: config.containerRuntime,
          },
        },
        parent,
      );
      const images =
        config.podImages.length > 0
          ? new PodImages(
              `${name}-images`,
              {
                plan,
                nodes,
                runtime: config.containerRuntime,
                archives: config.podImages,
                runtimeSteps: Object.fromEntries(
                  Object.entries(runtime.nodes).map(([node, steps]) => [node, steps.runtime]),
                ),
              },
              parent,
            )
          : undefined;
      // Once every API server runs the new release, node after node (control nodes first): the
      // drain, the kubelet (after what its pods need: the runtime, the CNI config, the pod
      // images) beside kube-proxy, the uncordon. A node that leaves goes the other way round:
      // drained first, then its kubelet and kube-proxy, then what they needed and its Node object.
      let previous: pulumi.Resource = this.controlPlane.apiServers;
      for (const node of plan.kubeletNodes) {
        const drained = drains.drain(node, previous);
        const { runtime: runtimeStep, cni } = runtime.nodes[node.name];
        const podImages = images?.nodes[node.name];
        const kubeletStep = kubelet.addNode(node, [
          runtimeStep,
          ...(cni ? [cni] : []),
          ...(podImages ? [podImages] : []),
          drained,
        ]);
        const proxyStep = kubeProxy?.addNode(node, drained);
        previous = drains.uncordon(node, proxyStep ? [kubeletStep, proxyStep] : [kubeletStep]);
      }
      if (config.cni === "bridge") {
        new PodRoutes(`${name}-routes`, { plan, networkReady: args.networkReady }, parent);
      }
    }
    this.registerOutputs({});
  }
}
