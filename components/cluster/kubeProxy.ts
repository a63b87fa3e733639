/**
 * KubeProxy: Service routing on every kubelet node, with the bridge CNI only (Cilium replaces
 * it). It reaches the API through the VIP and retries on its own, so it waits for nothing but
 * its VM.
 */
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { renderKubeProxyConfiguration, renderKubeProxyUnit } from "../kubernetes/kubeProxy";
import { NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
import { ArtifactCache } from "./artifactCache";
import { NodeScripts } from "./nodeScripts";
import { nodeStep, stageAll } from "./nodeStep";
import { PRIVATE, PkiMaterial, textFile } from "./pkiFiles";

export interface KubeProxyArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly scripts: NodeScripts;
  /** Must hold the kube-proxy artifact, which `artifacts(config)` lists only for cni=bridge. */
  readonly artifacts: ArtifactCache;
}

export class KubeProxy extends pulumi.ComponentResource {
  /** By node name. */
  readonly nodes: Readonly<Record<string, remote.Command>>;

  constructor(name: string, args: KubeProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:KubeProxy", name, {}, opts);
    const { plan, pki } = args;
    const fetched = [args.artifacts.get("kube-proxy", this)];
    const nodes: Record<string, remote.Command> = {};
    for (const node of plan.kubeletNodes) {
      const target = args.scripts.target(node);
      const prefix = `${name}-${node.name}`;
      nodes[node.name] = nodeStep(
        prefix,
        {
          target,
          step: "kube-proxy",
          staged: stageAll(prefix, target, fetched, this),
          files: [
            textFile(NODE_PATHS.kubeconfigs.kubeProxy, pki.kubeconfigs.kubeProxy, PRIVATE),
            textFile(NODE_PATHS.kubeProxyConfig, renderKubeProxyConfiguration(plan, node)),
            textFile(`${SYSTEMD_DIR}/kube-proxy.service`, renderKubeProxyUnit()),
          ],
          units: ["kube-proxy.service"],
        },
        this,
      );
    }
    this.nodes = nodes;
    this.registerOutputs({});
  }
}
