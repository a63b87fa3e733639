/**
 * The host side of the VM network: on Linux a bridge, NAT and the project's own dnsmasq; on
 * macOS vmnet's shared network with Homebrew dnsmasq. Both export the stack's NFS directory.
 * One EnsuredScript does the work, so a host reboot is repaired by the next `pulumi up` while an
 * unchanged, healthy host shows no changes.
 */
import * as pulumi from "@pulumi/pulumi";
import { AddressPlan } from "../network/addressPlan";
import { formatAddress, nthAddress, parseCidr } from "../network/ipv4";
import { DNSMASQ_FILES, renderDnsmasqConfig } from "./dnsmasq";
import { EnsuredScript } from "./ensured";
import { exportLine } from "./exports";
import { VmNetwork, bridgeName, natTableName, shortHash, stackStateDir } from "./layout";
import { HostPlatform, hostPlatform } from "./platform";

export interface HostNetworkArgs {
  /** The address plan; the subnet, host address, leases and DNS names come from it. */
  readonly plan: AddressPlan;
  /** The Pulumi stack; names the bridge, the NAT table and the marked config blocks. */
  readonly stack: string;
  /** The host OS, i.e. `process.platform`: "linux" or "darwin". */
  readonly platform: string;
  /**
   * Root-owned directory for the dnsmasq config, pid and lease files.
   * @default stackStateDir(stack), i.e. /var/lib/hardway/<stack>
   */
  readonly stateDir?: string;
  /**
   * Directory exported over NFS to the VM subnet, for the cluster's default StorageClass.
   * @default `${stateDir}/nfs`
   */
  readonly exportDir?: string;
  /**
   * The NFS exports file that receives the stack's marked block.
   * @default "/etc/exports"
   */
  readonly exportsFile?: string;
}

/** Everything the host network runs, decided from plain data. Pure. */
export interface HostNetworkSteps {
  readonly platform: HostPlatform;
  readonly script: string;
  readonly args: string[];
  /** The dnsmasq config, written by the script (the state dir is root's). */
  readonly stdin: string;
  readonly vmNetwork: VmNetwork;
  readonly stateDir: string;
  readonly exportDir: string;
}

export function hostNetworkSteps(args: HostNetworkArgs): HostNetworkSteps {
  const platform = hostPlatform(args.platform);
  const { plan, stack } = args;
  const stateDir = args.stateDir ?? stackStateDir(stack);
  const exportDir = args.exportDir ?? `${stateDir}/nfs`;
  const exportsFile = args.exportsFile ?? "/etc/exports";
  const bridge = bridgeName(stack);
  const dnsmasqConf = `${stateDir}/${DNSMASQ_FILES.config}`;
  const stdin = renderDnsmasqConfig(plan, {
    interface: bridge,
    stateDir,
    platform,
    tag: `hw${shortHash(stack)}`,
  });
  // Checked here so a bad directory fails the preview, not the script.
  exportLine(platform, exportDir, plan);
  const exportArgs = ["--export-dir", exportDir, "--exports-file", exportsFile, "--stack", stack];
  if (platform === "darwin") {
    return {
      platform,
      script: "host/macos-network.sh",
      args: [
        "--host-ip",
        plan.hostIp,
        "--subnet",
        plan.subnet,
        "--netmask",
        plan.netmask,
        "--state-dir",
        stateDir,
        ...exportArgs,
      ],
      stdin,
      vmNetwork: {
        kind: "vmnet-shared",
        // vmnet makes the start address the host's; the range spans the whole /24 so its NAT
        // covers node, VIP and MetalLB addresses alike.
        startAddress: plan.hostIp,
        endAddress: formatAddress(nthAddress(parseCidr(plan.subnet), 254)),
        subnetMask: plan.netmask,
      },
      stateDir,
      exportDir,
    };
  }
  return {
    platform,
    script: "host/linux-network.sh",
    args: [
      "--bridge",
      bridge,
      "--host-cidr",
      `${plan.hostIp}/${plan.prefixLength}`,
      "--subnet",
      plan.subnet,
      "--state-dir",
      stateDir,
      "--dnsmasq-conf",
      dnsmasqConf,
      "--nat-table",
      natTableName(stack),
      "--cluster-cidr",
      plan.clusterCidr,
      "--dnsmasq-conf-from-stdin",
      ...exportArgs,
    ],
    stdin,
    vmNetwork: { kind: "bridge", bridge },
    stateDir,
    exportDir,
  };
}

export class HostNetwork extends pulumi.ComponentResource {
  /** Everything this component runs, as plain data (see hostNetworkSteps). */
  readonly steps: HostNetworkSteps;
  /** How VMs attach to the network; resolves once the network is up. */
  readonly vmNetwork: pulumi.Output<VmNetwork>;
  readonly stateDir: pulumi.Output<string>;
  /** The NFS-exported directory; resolves once it is exported. */
  readonly exportDir: pulumi.Output<string>;
  /** The host's address on the VM network: gateway, DNS and NFS server of the VMs. */
  readonly hostIp: pulumi.Output<string>;
  /** The script that brings the network up; VMs wait for it. */
  readonly network: EnsuredScript;

  constructor(name: string, args: HostNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:host:HostNetwork", name, {}, opts);
    const steps = hostNetworkSteps(args);
    this.steps = steps;
    this.network = new EnsuredScript(
      `${name}-${steps.platform}`,
      { script: steps.script, args: steps.args, stdin: steps.stdin, asRoot: true },
      { parent: this },
    );
    // Through the script's output, so every consumer waits for the network without dependsOn.
    const once = <T>(value: T): pulumi.Output<T> => this.network.script.apply(() => value);
    this.vmNetwork = once(steps.vmNetwork);
    this.stateDir = once(steps.stateDir);
    this.exportDir = once(steps.exportDir);
    this.hostIp = once(args.plan.hostIp);
    this.registerOutputs({
      vmNetwork: this.vmNetwork,
      stateDir: this.stateDir,
      exportDir: this.exportDir,
      hostIp: this.hostIp,
    });
  }
}
