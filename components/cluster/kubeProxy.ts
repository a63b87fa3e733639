/**
 * KubeProxy: Service routing on every kubelet node, with the bridge CNI only (Cilium replaces
 * it). It reaches the API through the VIP and retries on its own. KubernetesCluster adds the
 * nodes one by one (addNode), each after its node's drain, beside the kubelet (the skew policy
 * lets kube-proxy be older or newer than the kubelet beside it, never newer than an API server).
 */
import * as pulumi from "@pulumi/pulumi";
import { renderKubeProxyConfiguration, renderKubeProxyUnit } from "../kubernetes/kubeProxy";
import { NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import { AddressPlan, NodeAddress } from "../network/addressPlan";
import { ArtifactCache } from "./artifactCache";
import { ClusterNodes, NodeStep, targetFor } from "./nodeStep";
import { PRIVATE, PkiMaterial, textFile } from "./pkiFiles";

export interface KubeProxyArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly nodes: ClusterNodes;
  /** Must hold the kube-proxy artifact, which `artifacts(config)` lists only for cni=bridge. */
  readonly artifacts: ArtifactCache;
}

export class KubeProxy extends pulumi.ComponentResource {
  /** By node name, as they are added. */
  readonly nodes: Record<string, NodeStep> = {};
  private readonly fetched: ReturnType<ArtifactCache["get"]>;

  constructor(
    private readonly name: string,
    private readonly args: KubeProxyArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hardway:cluster:KubeProxy", name, {}, opts);
    this.fetched = args.artifacts.get(["kube-proxy"], this);
    this.registerOutputs({});
  }

  /** The node's kube-proxy step, after `after` (its node's drain). */
  addNode(node: NodeAddress, after: pulumi.Resource): NodeStep {
    const { plan, pki, nodes } = this.args;
    const step = new NodeStep(
      `${this.name}-${node.name}`,
      {
        step: "kube-proxy",
        nodes,
        targets: [
          targetFor(nodes, node, [
            textFile(NODE_PATHS.kubeconfigs.kubeProxy, pki.kubeconfigs.kubeProxy, PRIVATE),
            textFile(NODE_PATHS.kubeProxyConfig, renderKubeProxyConfiguration(plan, node)),
            textFile(`${SYSTEMD_DIR}/kube-proxy.service`, renderKubeProxyUnit()),
          ]),
        ],
        artifacts: this.fetched,
        units: ["kube-proxy.service"],
      },
      { parent: this, dependsOn: [after] },
    );
    this.nodes[node.name] = step;
    return step;
  }
}
