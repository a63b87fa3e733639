/**
 * NodeRuntime: the container runtime on every kubelet node (containerd + runc + crictl, or the
 * CRI-O bundle), the CNI plugin binaries, and with the bridge CNI the node's conflist. Nodes do
 * not wait for each other, nor for the control plane.
 */
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { Cni, ContainerRuntime } from "../config/schema";
import { renderBridgeConfList } from "../kubernetes/cni";
import { BIN_DIR, NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import {
  RUNTIME_SERVICES,
  renderContainerdConfig,
  renderContainerdUnit,
  renderCrictlConfig,
  renderCrioDropIn,
} from "../kubernetes/runtime";
import { renderServiceUnit } from "../kubernetes/systemd";
import { NodeAddress } from "../network/addressPlan";
import { ArtifactCache } from "./artifactCache";
import { NodeScripts } from "./nodeScripts";
import { nodeStep, stageAll } from "./nodeStep";
import { textFile } from "./pkiFiles";
import { RemoteFileInput } from "./remoteFiles";

/** The image signature policy CRI-O refuses to start without; the bundle ships none we install. */
export const CONTAINERS_POLICY_PATH = "/etc/containers/policy.json";

export function renderContainersPolicy(): string {
  return JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }, null, 2) + "\n";
}

/** CRI-O's unit in the upstream shape (the bundle's install script would otherwise write it). */
export function renderCrioUnit(): string {
  return renderServiceUnit({
    unit: {
      description: "Container Runtime Interface for OCI (CRI-O)",
      documentation: ["https://github.com/cri-o/cri-o"],
      wants: ["network-online.target"],
      after: ["network-online.target"],
    },
    service: {
      type: "notify",
      execStart: [`${BIN_DIR}/crio`],
      restart: "on-failure",
      restartSec: 10,
      limitNoFile: 1048576,
      limitNProc: 1048576,
      tasksMax: "infinity",
      oomScoreAdjust: -999,
    },
  });
}

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
