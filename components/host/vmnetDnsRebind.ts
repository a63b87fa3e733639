/**
 * macOS only. vmnet creates its bridge (bridge100 …) when the first VM starts and removes it
 * when the last one stops, and dnsmasq can only bind the host address while that bridge exists.
 * So once the VMs run, dnsmasq is restarted; the guide's chapter 2 explains the dance. An
 * EnsuredScript keeps it so: after a host reboot a preview sees dnsmasq not listening on the
 * host address and `up` rebinds it again.
 */
import * as pulumi from "@pulumi/pulumi";
import { EnsuredScript } from "./ensured";
import { HostNetworkSteps } from "./hostNetwork";

export interface VmnetDnsRebindArgs {
  /** The macOS host network's steps; its script and arguments are reused for this part. */
  readonly steps: HostNetworkSteps;
}

/** The rebind part's arguments for macos-network.sh. Pure. */
export function rebindArgs(steps: HostNetworkSteps): string[] {
  return [...steps.args, "--part", "dns-rebind"];
}

export class VmnetDnsRebind extends pulumi.ComponentResource {
  constructor(name: string, args: VmnetDnsRebindArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:host:VmnetDnsRebind", name, {}, opts);
    new EnsuredScript(
      `${name}-rebind`,
      { script: args.steps.script, args: rebindArgs(args.steps), asRoot: true },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
