/**
 * NodeDrains: the drain before and the uncordon after each kubelet node's steps (NodeDrain), so
 * an upgrade that does not keep pods running (a new Kubernetes minor, another runtime) moves
 * them off one node at a time, and a node that leaves the cluster is drained before its steps
 * go and its Node object deleted after. KubernetesCluster asks for both around each node's steps.
 */
import * as pulumi from "@pulumi/pulumi";
import { NodeAddress } from "../network/addressPlan";
import { NodeDrain } from "./nodeDrain";
import { ClusterNodes } from "./nodeStep";

export interface NodeDrainsArgs {
  readonly nodes: ClusterNodes;
  /** The control node whose kubectl and admin.conf drain the others. */
  readonly via: NodeAddress;
  /** What, when it changes, makes an update disruptive (e.g. the Kubernetes minor). */
  readonly disruption: Readonly<Record<string, string>>;
  /**
   * The cluster's data (the etcd members): when it is deleted as well (`destroy`), a leaving
   * node is not drained, as there is no cluster left to keep its pods.
   */
  readonly clusterData: pulumi.Resource;
  /**
   * Seconds a drain waits for evictions, and an uncordon for its node to be Ready.
   * @default 600
   */
  readonly timeoutSeconds?: number;
}

export class NodeDrains extends pulumi.ComponentResource {
  constructor(
    private readonly name: string,
    private readonly args: NodeDrainsArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hardway:cluster:NodeDrains", name, {}, opts);
    this.registerOutputs({});
  }

  /** The drain of `node`, after `after` (the API servers, or the previous node's uncordon). */
  drain(node: NodeAddress, after: pulumi.Resource): NodeDrain {
    return this.make("drain", node, after);
  }

  /** The uncordon of `node`, after its steps. */
  uncordon(node: NodeAddress, after: pulumi.Resource[]): NodeDrain {
    return this.make("uncordon", node, after);
  }

  private make(
    verb: "drain" | "uncordon",
    node: NodeAddress,
    after: pulumi.Input<pulumi.Resource> | pulumi.Input<pulumi.Resource>[],
  ): NodeDrain {
    const { clusterData, ...args } = this.args;
    return new NodeDrain(
      `${this.name}-${node.name}-${verb}`,
      { ...args, verb, node },
      { parent: this, dependsOn: after, deletedWith: clusterData },
    );
  }
}
