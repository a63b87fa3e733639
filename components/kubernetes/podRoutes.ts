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

/** The command that adds (or replaces) a route; `ip route replace` is idempotent by itself. */
export function addRouteCommand(os: HostOs, route: PodRoute): string[] {
  return os === "linux"
    ? ["ip", "route", "replace", route.podCidr, "via", route.via]
    : ["route", "-n", "add", "-net", route.podCidr, route.via];
}

export function deleteRouteCommand(os: HostOs, route: PodRoute): string[] {
  return os === "linux"
    ? ["ip", "route", "del", route.podCidr, "via", route.via]
    : ["route", "-n", "delete", "-net", route.podCidr, route.via];
}
