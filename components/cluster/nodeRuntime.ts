/**
 * NodeRuntime: the container runtime on every kubelet node (containerd + runc + crictl, or the
 * CRI-O bundle), the CNI plugin binaries, and with the bridge CNI the node's conflist. Nodes do
 * not wait for each other, nor for the control plane.
 */
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { Cni, ContainerRuntime } from "../config/schema";
import { renderBridgeConfList } from "../kubernetes/cni";
import { NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import {
  CONTAINERS_POLICY_PATH,
  RUNTIME_SERVICES,
  renderContainersPolicy,
  renderCrioUnit,
  renderContainerdConfig,
  renderContainerdUnit,
  renderCrictlConfig,
  renderCrioDropIn,
} from "../kubernetes/runtime";
import { NodeAddress } from "../network/addressPlan";
import { ArtifactCache } from "./artifactCache";
import { NodeScripts } from "./nodeScripts";
import { nodeStep, stageAll } from "./nodeStep";
import { textFile } from "./pkiFiles";
import { RemoteFileInput } from "./remoteFiles";

/** The runtime's own files (configuration, unit), without the CNI conflist. */
export function runtimeFiles(runtime: ContainerRuntime): RemoteFileInput[] {
  const common = [textFile(NODE_PATHS.crictlConfig, renderCrictlConfig(runtime))];
  if (runtime === "containerd") {
    return [
      textFile(NODE_PATHS.containerdConfig, renderContainerdConfig()),
      textFile(`${SYSTEMD_DIR}/${RUNTIME_SERVICES.containerd}`, renderContainerdUnit()),
      ...common,
    ];
  }
  return [
    textFile(NODE_PATHS.crioDropIn, renderCrioDropIn()),
    textFile(CONTAINERS_POLICY_PATH, renderContainersPolicy()),
    textFile(`${SYSTEMD_DIR}/${RUNTIME_SERVICES["cri-o"]}`, renderCrioUnit()),
    ...common,
  ];
}

/** The release files each runtime installs, by artifact name. */
export function runtimeArtifactNames(runtime: ContainerRuntime): string[] {
  return runtime === "containerd"
    ? ["containerd", "runc", "crictl", "cni-plugins"]
    : ["cri-o", "cni-plugins"];
}

export interface NodeRuntimeArgs {
  /** The kubelet nodes (AddressPlan.kubeletNodes). */
  readonly nodes: readonly NodeAddress[];
  readonly runtime: ContainerRuntime;
  readonly cni: Cni;
  readonly scripts: NodeScripts;
  readonly artifacts: ArtifactCache;
}

export interface NodeRuntimeSteps {
  readonly runtime: remote.Command;
  /** The bridge conflist; only with cni=bridge (Cilium writes its own). */
  readonly cni?: remote.Command;
}

export class NodeRuntime extends pulumi.ComponentResource {
  /** By node name. */
  readonly nodes: Readonly<Record<string, NodeRuntimeSteps>>;

  constructor(name: string, args: NodeRuntimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:NodeRuntime", name, {}, opts);
    const fetched = runtimeArtifactNames(args.runtime).map((a) => args.artifacts.get(a, this));
    const nodes: Record<string, NodeRuntimeSteps> = {};
    for (const node of args.nodes) {
      const target = args.scripts.target(node);
      const prefix = `${name}-${node.name}`;
      const runtime = nodeStep(
        `${prefix}-${args.runtime}`,
        {
          target,
          step: "runtime",
          staged: stageAll(prefix, target, fetched, this),
          files: runtimeFiles(args.runtime),
          units: [RUNTIME_SERVICES[args.runtime]],
        },
        this,
      );
      const cni =
        args.cni === "bridge"
          ? nodeStep(
              `${prefix}-cni`,
              {
                target,
                step: "cni-bridge",
                files: [textFile(NODE_PATHS.cniConfList, renderBridgeConfList(node))],
              },
              this,
            )
          : undefined;
      nodes[node.name] = cni === undefined ? { runtime } : { runtime, cni };
    }
    this.nodes = nodes;
    this.registerOutputs({});
  }
}
