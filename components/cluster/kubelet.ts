/**
 * Kubelet: the node agent on every control node and worker. Each waits for its own node's
 * runtime and for nothing else: it registers its node and retries until the API answers.
 * Destroying the step unmounts whatever pods still had mounted before /var/lib/kubelet goes.
 */
import * as pulumi from "@pulumi/pulumi";
import { Cni, ContainerRuntime } from "../config/schema";
import { renderKubeletConfiguration, renderKubeletUnit } from "../kubernetes/kubelet";
import { NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
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
  /** Each node's runtime step, by node name (NodeRuntime.nodes[n].runtime). */
  readonly runtimeSteps: Readonly<Record<string, pulumi.Resource>>;
}

export class Kubelet extends pulumi.ComponentResource {
  /** By node name. */
  readonly nodes: Readonly<Record<string, NodeStep>>;

  constructor(name: string, args: KubeletArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:Kubelet", name, {}, opts);
    const { plan, pki } = args;
    const fetched = args.artifacts.get(["kubelet"], this);
    const nodes: Record<string, NodeStep> = {};
    for (const node of plan.kubeletNodes) {
      const runtimeStep = args.runtimeSteps[node.name];
      if (runtimeStep === undefined) {
        throw new pulumi.ResourceError(
          `runtimeSteps has no entry for ${node.name}; give Kubelet the NodeRuntime of every kubelet node`,
          this,
        );
      }
      const kubeletArgs = { plan, node, runtime: args.runtime, cni: args.cni };
      nodes[node.name] = new NodeStep(
        `${name}-${node.name}`,
        {
          step: "kubelet",
          connection: args.nodes.connection,
          targets: [
            targetFor(args.nodes, node, [
              caCertFile(pki, "kubernetes-ca"),
              ...leafFiles(pki, kubeletCertId(node.name)),
              textFile(
                NODE_PATHS.kubeconfigs.kubelet,
                pki.kubeconfigs.kubelets[node.name],
                PRIVATE,
              ),
              textFile(NODE_PATHS.kubeletConfig, renderKubeletConfiguration(kubeletArgs)),
              textFile(`${SYSTEMD_DIR}/kubelet.service`, renderKubeletUnit(kubeletArgs)),
            ]),
          ],
          artifacts: fetched,
          units: ["kubelet.service"],
          stateDirs: [NODE_PATHS.kubeletDir],
        },
        { parent: this, dependsOn: [runtimeStep] },
      );
    }
    this.nodes = nodes;
    this.registerOutputs({});
  }
}
