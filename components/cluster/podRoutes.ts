/**
 * PodRoutes: with the bridge CNI, the host routes each node's pod /24 to that node, one
 * local.Command per route whose delete takes the route away.
 */
import * as pulumi from "@pulumi/pulumi";
import { local } from "@pulumi/command";
import { privilegedArgv } from "../host/privilege";
import {
  HostOs,
  PodRoute,
  addRouteCommand,
  deleteRouteCommand,
  podRoutes,
} from "../kubernetes/podRoutes";
import { AddressPlan } from "../network/addressPlan";
import { shellCommand } from "./shell";

/** Shell for one route: add replaces whatever route was there, delete tolerates its absence. */
export function routeCommands(
  os: HostOs,
  route: PodRoute,
  uid: number,
): { readonly create: string; readonly delete: string } {
  const privileged = (argv: string[]) => shellCommand(privilegedArgv(argv, { asRoot: true, uid }));
  const remove = privileged(deleteRouteCommand(os, route));
  return {
    // `route add` on macOS refuses an existing route, so the old one goes first on both systems.
    create: `${remove} >/dev/null 2>&1 || true; ${privileged(addRouteCommand(os, route))}`,
    // A reboot of the host may already have dropped the route.
    delete: `${remove} >/dev/null 2>&1 || true`,
  };
}

export interface PodRoutesArgs {
  readonly plan: AddressPlan;
  readonly hostOs: HostOs;
  /**
   * The uid Pulumi runs as; routes need root, so anyone else goes through `sudo -n`.
   * @default process.getuid()
   */
  readonly uid?: number;
  /** The host network (its bridge must exist before routes through it). @default none */
  readonly networkReady?: pulumi.Resource;
}

export class PodRoutes extends pulumi.ComponentResource {
  /** By node name. */
  readonly routes: Readonly<Record<string, local.Command>>;

  constructor(name: string, args: PodRoutesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:PodRoutes", name, {}, opts);
    const uid = args.uid ?? process.getuid?.() ?? 0;
    const routes: Record<string, local.Command> = {};
    for (const route of podRoutes(args.plan)) {
      const commands = routeCommands(args.hostOs, route, uid);
      routes[route.node] = new local.Command(
        `${name}-${route.node}`,
        { create: commands.create, delete: commands.delete, triggers: [route.podCidr, route.via] },
        {
          parent: this,
          dependsOn: args.networkReady === undefined ? [] : [args.networkReady],
          deleteBeforeReplace: true,
        },
      );
    }
    this.routes = routes;
    this.registerOutputs({});
  }
}
