/**
 * macOS only. vmnet creates its bridge (bridge100 …) when the first VM starts and removes it
 * when the last one stops, and dnsmasq can only bind the host address while that bridge exists.
 * So once the VMs run, dnsmasq is restarted; the guide's chapter 2 explains the dance.
 */
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { shellCommand } from "../cluster/shell";
import { ASSETS_DIR } from "./ensured";
import { HostNetworkSteps } from "./hostNetwork";
import { privilegedArgv } from "./privilege";

export interface VmnetDnsRebindArgs {
  /** The macOS host network's steps; its script and arguments are reused with `rebind`. */
  readonly steps: HostNetworkSteps;
  /**
   * The uid running Pulumi; root needs no sudo.
   * @default process.getuid()
   */
  readonly uid?: number;
}

/** The rebind command line, as plain data. Pure. */
export function rebindCommand(steps: HostNetworkSteps, uid: number): string {
  const script = path.join(ASSETS_DIR, steps.script);
  return shellCommand(
    privilegedArgv(["bash", script, "rebind", ...steps.args], { asRoot: true, uid }),
  );
}

export class VmnetDnsRebind extends pulumi.ComponentResource {
  constructor(name: string, args: VmnetDnsRebindArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:host:VmnetDnsRebind", name, {}, opts);
    const create = rebindCommand(args.steps, args.uid ?? process.getuid?.() ?? 0);
    new command.local.Command(
      `${name}-rebind`,
      {
        create,
        // Nothing to undo: the host network's own delete removes the dnsmasq block.
        delete: "true",
        triggers: [args.steps.stdin, args.steps.args.join(" ")],
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
