/**
 * Kubelet: the node agent on every control node and worker. KubernetesCluster adds the nodes one
 * by one (addNode), each kubelet after its own node's runtime and drain: it registers its node
 * and retries until the API answers. Destroying the step unmounts whatever pods still had mounted before
 * /var/lib/kubelet goes.
 */
import * as pulumi from "@pulumi/pulumi";
import { Cni, ContainerRuntime } from "../config/schema";
import { renderKubeletConfiguration, renderKubeletUnit } from "../kubernetes/kubelet";
import { NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import { AddressPlan, NodeAddress } from "../network/addressPlan";
import { kubeletCertId } from "../pki/certificates";
import { ArtifactCache } from "./artifactCache";
import { ClusterNodes, NodeStep, targetFor } from "./nodeStep";
import { PRIVATE, PkiMaterial, caCertFile, leafFiles, textFile } from "./pkiFiles";

export interface KubeletArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly runtime: ContainerRuntime;
  readonly cni: Cni;
  readonly nodes: ClusterNodes;
  readonly artifacts: ArtifactCache;
}

export class Kubelet extends pulumi.ComponentResource {
  /** By node name, as they are added. */
  readonly nodes: Record<string, NodeStep> = {};
  private readonly fetched: ReturnType<ArtifactCache["get"]>;

  constructor(
    private readonly name: string,
    private readonly args: KubeletArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hardway:cluster:Kubelet", name, {}, opts);
    this.fetched = args.artifacts.get(["kubelet"], this);
    this.registerOutputs({});
  }

  /** The node's kubelet step, after `after` (its runtime step, its drain). */
  addNode(node: NodeAddress, after: pulumi.Resource[]): NodeStep {
    const { args } = this;
    const { plan, pki } = args;
    const kubeletArgs = { plan, node, runtime: args.runtime, cni: args.cni };
    const step = new NodeStep(
      `${this.name}-${node.name}`,
      {
        step: "kubelet",
        nodes: args.nodes,
        targets: [
          targetFor(args.nodes, node, [
            caCertFile(pki, "kubernetes-ca"),
            ...leafFiles(pki, kubeletCertId(node.name)),
            textFile(NODE_PATHS.kubeconfigs.kubelet, pki.kubeconfigs.kubelets[node.name], PRIVATE),
            textFile(NODE_PATHS.kubeletConfig, renderKubeletConfiguration(kubeletArgs)),
            textFile(`${SYSTEMD_DIR}/kubelet.service`, renderKubeletUnit(kubeletArgs)),
          ]),
        ],
        artifacts: this.fetched,
        units: ["kubelet.service"],
        stateDirs: [NODE_PATHS.kubeletDir],
      },
      { parent: this, dependsOn: after },
    );
    this.nodes[node.name] = step;
    return step;
  }
}
