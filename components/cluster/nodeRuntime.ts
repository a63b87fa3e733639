/**
 * NodeRuntime: the container runtime on every kubelet node (containerd + runc + crictl, or the
 * CRI-O bundle), the CNI plugin binaries, and with the bridge CNI the node's conflist. Nodes do
 * not wait for each other, nor for the control plane: a runtime is no party to the version-skew
 * policy, and restarting containerd (a new containerd or runc) keeps the containers running,
 * since each is held by its shim.
 *
 * Each runtime is its own step on the node ("containerd" or "cri-o"), so switching
 * `hardway:containerRuntime` installs the new one and then removes the old one without touching
 * what the new one installed (files and binaries both share are kept while any step holds them).
 */
import * as pulumi from "@pulumi/pulumi";
import { Cni, ContainerRuntime } from "../config/schema";
import { renderBridgeConfList } from "../kubernetes/cni";
import { NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import {
  CONTAINERS_POLICY_PATH,
  REGISTRIES_CONF_PATH,
  RUNTIME_SERVICES,
  RegistryMirror,
  containerdMirrorFiles,
  crioMirrorFiles,
  renderContainersPolicy,
  renderCrioUnit,
  renderContainerdConfig,
  renderContainerdUnit,
  renderCrictlConfig,
  renderCrioDropIn,
  renderRegistriesConf,
} from "../kubernetes/runtime";
import { NodeAddress } from "../network/addressPlan";
import { ArtifactCache } from "./artifactCache";
import { ClusterNodes, NodeStep, targetFor } from "./nodeStep";
import { textFile } from "./pkiFiles";
import { RemoteFileInput } from "./remoteFiles";

/** The runtime's own files (configuration, unit, registry mirrors), without the CNI conflist. */
export function runtimeFiles(
  runtime: ContainerRuntime,
  mirrors: readonly RegistryMirror[] = [],
): RemoteFileInput[] {
  const common = [textFile(NODE_PATHS.crictlConfig, renderCrictlConfig(runtime))];
  if (runtime === "containerd") {
    return [
      textFile(NODE_PATHS.containerdConfig, renderContainerdConfig()),
      ...containerdMirrorFiles(mirrors).map((f) => textFile(f.path, f.content)),
      textFile(`${SYSTEMD_DIR}/${RUNTIME_SERVICES.containerd}`, renderContainerdUnit()),
      ...common,
    ];
  }
  return [
    textFile(NODE_PATHS.crioDropIn, renderCrioDropIn()),
    textFile(CONTAINERS_POLICY_PATH, renderContainersPolicy()),
    textFile(REGISTRIES_CONF_PATH, renderRegistriesConf(mirrors)),
    ...crioMirrorFiles(mirrors).map((f) => textFile(f.path, f.content)),
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
  readonly cluster: ClusterNodes;
  readonly artifacts: ArtifactCache;
  /** Registries' mirrors (config `registryMirrors`, CAs read). @default none */
  readonly registryMirrors?: readonly RegistryMirror[];
}

export interface NodeRuntimeSteps {
  readonly runtime: NodeStep;
  /** The bridge conflist; only with cni=bridge (Cilium writes its own). */
  readonly cni?: NodeStep;
}

export class NodeRuntime extends pulumi.ComponentResource {
  /** By node name. */
  readonly nodes: Readonly<Record<string, NodeRuntimeSteps>>;

  constructor(name: string, args: NodeRuntimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:NodeRuntime", name, {}, opts);
    const fetched = args.artifacts.get(runtimeArtifactNames(args.runtime), this);
    const nodes: Record<string, NodeRuntimeSteps> = {};
    for (const node of args.nodes) {
      const prefix = `${name}-${node.name}`;
      const runtime = new NodeStep(
        `${prefix}-${args.runtime}`,
        {
          step: args.runtime,
          nodes: args.cluster,
          targets: [
            targetFor(args.cluster, node, runtimeFiles(args.runtime, args.registryMirrors)),
          ],
          artifacts: fetched,
          units: [RUNTIME_SERVICES[args.runtime]],
        },
        { parent: this },
      );
      const cni =
        args.cni === "bridge"
          ? new NodeStep(
              `${prefix}-cni`,
              {
                step: "cni-bridge",
                nodes: args.cluster,
                targets: [
                  targetFor(args.cluster, node, [
                    textFile(NODE_PATHS.cniConfList, renderBridgeConfList(node)),
                  ]),
                ],
              },
              { parent: this },
            )
          : undefined;
      nodes[node.name] = cni === undefined ? { runtime } : { runtime, cni };
    }
    this.nodes = nodes;
    this.registerOutputs({});
  }
}
