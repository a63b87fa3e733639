/**
 * PodRoutes: with the bridge CNI, the host routes each node's pod /24 to that node. Each route is
 * an EnsuredScript over assets/host/pod-route.sh, so after a host reboot (which drops routes) a
 * preview shows the repair and `up` puts the routes back; delete takes a route away.
 */
import * as pulumi from "@pulumi/pulumi";
import { EnsuredScript } from "../host/ensured";
import { PodRoute, podRoutes } from "../kubernetes/podRoutes";
import { AddressPlan } from "../network/addressPlan";

export const POD_ROUTE_SCRIPT = "host/pod-route.sh";

/** pod-route.sh's arguments for one route. Pure. */
export function podRouteArgs(route: PodRoute): string[] {
  return ["--cidr", route.podCidr, "--via", route.via];
}

export interface PodRoutesArgs {
  readonly plan: AddressPlan;
  /** The host network (its bridge must exist before routes through it). @default none */
  readonly networkReady?: pulumi.Resource;
}

export class PodRoutes extends pulumi.ComponentResource {
  /** By node name. */
  readonly routes: Readonly<Record<string, EnsuredScript>>;

  constructor(name: string, args: PodRoutesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:PodRoutes", name, {}, opts);
    const routes: Record<string, EnsuredScript> = {};
    for (const route of podRoutes(args.plan)) {
      routes[route.node] = new EnsuredScript(
        `${name}-${route.node}`,
        { script: POD_ROUTE_SCRIPT, args: podRouteArgs(route), asRoot: true },
        { parent: this, dependsOn: args.networkReady === undefined ? [] : [args.networkReady] },
      );
    }
    this.routes = routes;
    this.registerOutputs({});
  }
}
