/**
 * KubeProxy: Service routing on every kubelet node, with the bridge CNI only (Cilium replaces
 * it). It reaches the API through the VIP and retries on its own, so it waits for nothing but
 * its VM.
 */
import * as pulumi from "@pulumi/pulumi";
import { renderKubeProxyConfiguration, renderKubeProxyUnit } from "../kubernetes/kubeProxy";
import { NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
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
  /** By node name. */
  readonly nodes: Readonly<Record<string, NodeStep>>;

  constructor(name: string, args: KubeProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:KubeProxy", name, {}, opts);
    const { plan, pki } = args;
    const fetched = args.artifacts.get(["kube-proxy"], this);
    const nodes: Record<string, NodeStep> = {};
    for (const node of plan.kubeletNodes) {
      nodes[node.name] = new NodeStep(
        `${name}-${node.name}`,
        {
          step: "kube-proxy",
          connection: args.nodes.connection,
          targets: [
            targetFor(args.nodes, node, [
              textFile(NODE_PATHS.kubeconfigs.kubeProxy, pki.kubeconfigs.kubeProxy, PRIVATE),
              textFile(NODE_PATHS.kubeProxyConfig, renderKubeProxyConfiguration(plan, node)),
              textFile(`${SYSTEMD_DIR}/kube-proxy.service`, renderKubeProxyUnit()),
            ]),
          ],
          artifacts: fetched,
          units: ["kube-proxy.service"],
        },
        { parent: this },
      );
    }
    this.nodes = nodes;
    this.registerOutputs({});
  }
}
