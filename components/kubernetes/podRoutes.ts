/**
 * With the bridge CNI nothing tunnels pod traffic between nodes: the host, which every VM uses
 * as its gateway, routes each node's pod /24 to that node's IP.
 */
import { AddressPlan } from "../network/addressPlan";

export interface PodRoute {
  readonly podCidr: string;
  readonly via: string;
  readonly node: string;
}

export function podRoutes(plan: AddressPlan): PodRoute[] {
  return plan.kubeletNodes.map((node) => {
    if (node.podCidr === undefined) {
      throw new Error(`kubelet node ${node.name} has no pod CIDR in the address plan`);
    }
    return { podCidr: node.podCidr, via: node.ip, node: node.name };
  });
}

export type HostOs = "linux" | "darwin";
