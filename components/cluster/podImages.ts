/**
 * PodImages: OCI image archives from the host loaded into every kubelet node's container
 * runtime (assets/node/load-images.sh), for clusters that reach no registry. The archives name
 * their images; the sandbox image the runtime is configured with comes first, so pods can start.
 * Each node loads its images once its runtime runs; a changed archive loads again.
 */
import * as crypto from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ContainerRuntime } from "../config/schema";
import { AddressPlan } from "../network/addressPlan";
import { ClusterNodes, NodeStep, Upload, remoteHome, targetFor } from "./nodeStep";

/** Where an archive from the host goes on a VM: by a hash of its host path, keeping its name. */
export function archiveUpload(localPath: string, user: string): Upload {
  const key = crypto.createHash("sha256").update(localPath).digest("hex").slice(0, 12);
  return {
    localPath,
    remotePath: `${remoteHome(user)}/.cache/hardway/images/${key}-${path.basename(localPath)}`,
  };
}

export interface PodImagesArgs {
  readonly plan: AddressPlan;
  readonly nodes: ClusterNodes;
  /** Only containerd can import archives; the configuration refuses cri-o with podImages. */
  readonly runtime: ContainerRuntime;
  /** Absolute paths of OCI archives on the host, the sandbox (pause) image first. */
  readonly archives: readonly string[];
  /** Each node's runtime step, by node name: images load into a running runtime. */
  readonly runtimeSteps: Readonly<Record<string, pulumi.Resource>>;
}

export class PodImages extends pulumi.ComponentResource {
  /** By node name. */
  readonly nodes: Readonly<Record<string, NodeStep>>;

  constructor(name: string, args: PodImagesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:PodImages", name, {}, opts);
    if (args.runtime !== "containerd") {
      throw new pulumi.ResourceError(
        "pod image archives can only be loaded into containerd; set hardway:containerRuntime to containerd",
        this,
      );
    }
    const user = args.nodes.connection.user;
    const uploads = args.archives.map((a) => archiveUpload(a, user));
    const nodes: Record<string, NodeStep> = {};
    for (const node of args.plan.kubeletNodes) {
      nodes[node.name] = new NodeStep(
        `${name}-${node.name}`,
        {
          step: "pod-images",
          nodes: args.nodes,
          targets: [targetFor(args.nodes, node, [])],
          command: {
            apply: [
              "bash",
              "load-images.sh",
              "apply",
              "--name",
              "pod-images",
              ...uploads.flatMap((u) => ["--archive", u.remotePath]),
            ],
            remove: ["bash", "load-images.sh", "remove", "--name", "pod-images"],
            uploads,
          },
        },
        {
          parent: this,
          dependsOn: [args.runtimeSteps[node.name]],
        },
      );
    }
    this.nodes = nodes;
    this.registerOutputs({});
  }
}
