/**
 * The bridge CNI network: each node bridges its pods onto `cni0` with addresses from its own /24
 * of the cluster CIDR; other nodes reach them through the host's pod routes. The loopback plugin
 * is not in this chain: containerd and CRI-O call it themselves for `lo`, so its binary only has
 * to be in /opt/cni/bin.
 */
import { NodeAddress } from "../network/addressPlan";

export const CNI_VERSION = "1.0.0";
export const BRIDGE_NAME = "cni0";

export function bridgeConfList(node: NodeAddress): Record<string, unknown> {
  if (node.podCidr === undefined) {
    throw new Error(`node ${node.name} has no pod CIDR, so it runs no pods`);
  }
  return {
    cniVersion: CNI_VERSION,
    name: "hardway-bridge",
    plugins: [
      {
        type: "bridge",
        bridge: BRIDGE_NAME,
        isGateway: true,
        // No NAT here: a pod reaches pods and nodes with its own address (the Kubernetes network
        // model), and the host masquerades only what leaves the subnet and the cluster CIDR.
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: node.podCidr }]],
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
}

export function renderBridgeConfList(node: NodeAddress): string {
  return JSON.stringify(bridgeConfList(node), null, 2) + "\n";
}
