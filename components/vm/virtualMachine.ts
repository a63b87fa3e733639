/**
 * VirtualMachine: one QEMU VM of the cluster, kept running by an EnsuredScript over
 * assets/vm/vm.sh. After a host reboot `pulumi up` sees `vm.sh status` fail and runs create
 * again, which boots the VM from its existing disk. A VM is ready once SSH answers with its own
 * host key and cloud-init has finished. Its `instance` id changes only when its disk is new, and
 * every step on the VM takes it as an input, so a re-created VM gets all its steps again. The
 * constructor only wires: the seed comes from cloudInit.ts, the argv from qemu.ts, the script's
 * calling convention from vmScript.ts.
 */
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { SSH_USER } from "../cluster/outputs";
import { Arch, VmSize } from "../config/schema";
import { EnsuredScript } from "../host/ensured";
import { VmNetwork, vmStateDir } from "../host/layout";
import { NodeAddress } from "../network/addressPlan";
import { SeedNetwork, renderSeed } from "./cloudInit";
import {
  DirectKernel,
  Firmware,
  NicAttachment,
  ResolvedAccelerator,
  firmwareFor,
  qemuArgv,
  tapName,
  vmFiles,
} from "./qemu";
import { VM_SCRIPT, encodeArgv, renderBundle, vmScriptFlags } from "./vmScript";

export interface VirtualMachineArgs {
  /** The node this VM is: name, role, IP, MAC, FQDN (from the address plan). */
  readonly node: NodeAddress;
  /** Host address, prefix, search domain and API VIP for the node's network-config. */
  readonly network: SeedNetwork;
  /** The stack name; it keeps tap names and state directories of two stacks apart. */
  readonly stack: string;
  readonly arch: Arch;
  /** Already resolved for this host, see `resolveAccelerator`. */
  readonly accelerator: ResolvedAccelerator;
  /** cpus, memory (MiB) and disk (GiB) of the VM. */
  readonly size: VmSize;
  /** Path of the verified base image the overlay disk is backed by (BaseImage.path). */
  readonly baseImage: pulumi.Input<string>;
  /** How the NIC reaches the host network (decided by the host network). */
  readonly attachment: VmNetwork;
  /** The host OS; it decides where the UEFI firmware lives. */
  readonly hostOs: NodeJS.Platform;
  /** OpenSSH public key authorised for the login user. */
  readonly sshPublicKey: pulumi.Input<string>;
  /** Its private key, used only to wait until SSH answers; travels on stdin, never in argv. */
  readonly sshPrivateKey: pulumi.Input<string>;
  /** The VM's own SSH host key (Pki.hostKeys), installed by cloud-init and pinned by the host. */
  readonly hostKey: {
    readonly publicKey: pulumi.Input<string>;
    readonly privateKey: pulumi.Input<string>;
  };
  /**
   * The image already holds the guest packages; cloud-init installs nothing.
   * @default false
   */
  readonly prebaked?: boolean;
  /**
   * UEFI firmware for disk boot.
   * @default firmwareFor(arch, hostOs, homebrewPrefix)
   */
  readonly firmware?: Firmware;
  /**
   * Homebrew's prefix on macOS.
   * @default "/opt/homebrew"
   */
  readonly homebrewPrefix?: string;
  /**
   * Direct kernel boot instead of firmware (test guests).
   * @default undefined (UEFI boot from the disk)
   */
  readonly kernel?: DirectKernel;
  /**
   * The stack's state directory; the VM lives in `<stateRoot>/vms/<node>`.
   * @default stackStateDir(stack), i.e. /var/lib/hardway/<stack>
   */
  readonly stateRoot?: string;
  /**
   * The user cloud-init authorises the key for and create waits for.
   * @default SSH_USER ("ubuntu")
   */
  readonly sshUser?: string;
  /**
   * Seconds create waits for SSH before it fails with the serial log.
   * @default 900
   */
  readonly bootTimeoutSeconds?: number;
  /**
   * Seconds delete waits for an ACPI power-down before it kills QEMU.
   * @default 60
   */
  readonly stopTimeoutSeconds?: number;
}

function nicFor(attachment: VmNetwork, stack: string, node: string): NicAttachment {
  return attachment.kind === "bridge"
    ? { kind: "tap", ifname: tapName(stack, node) }
    : {
        kind: "vmnet-shared",
        startAddress: attachment.startAddress,
        endAddress: attachment.endAddress,
        subnetMask: attachment.subnetMask,
      };
}

export class VirtualMachine extends pulumi.ComponentResource {
  readonly nodeName: string;
  readonly ip: string;
  readonly mac: string;
  readonly stateDir: string;
  readonly serialLog: string;
  /** The QEMU argv vm.sh runs (binary first). */
  readonly qemuArgv: readonly string[];
  /** The node's address, resolved only once the VM answers SSH: depend on it to use the VM. */
  readonly sshHost: pulumi.Output<string>;
  /** Made with the VM's disk; a new one means an empty disk. Resolves once the VM is ready. */
  readonly instance: pulumi.Output<string>;
  /** The host key the VM presents, pinned by every SSH session. */
  readonly hostKey: pulumi.Output<string>;

  constructor(name: string, args: VirtualMachineArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:vm:VirtualMachine", name, {}, opts);
    const { node, size } = args;
    const stateDir = vmStateDir(args.stack, node.name, args.stateRoot);
    const files = vmFiles(stateDir);
    const firmware =
      args.kernel === undefined
        ? (args.firmware ?? firmwareFor(args.arch, args.hostOs, args.homebrewPrefix))
        : undefined;
    const nic = nicFor(args.attachment, args.stack, node.name);
    let argv: string[];
    try {
      argv = qemuArgv({
        name: `${args.stack}-${node.name}`,
        arch: args.arch,
        accelerator: args.accelerator,
        cpus: size.cpus,
        memory: size.memory,
        mac: node.mac,
        nic,
        files,
        firmware,
        kernel: args.kernel,
      });
    } catch (err) {
      throw new pulumi.ResourceError((err as Error).message, this);
    }
    const user = args.sshUser ?? SSH_USER;

    const flags = pulumi.output(args.baseImage).apply((baseImage) =>
      vmScriptFlags({
        stateDir,
        baseImage,
        tap:
          nic.kind === "tap" && args.attachment.kind === "bridge"
            ? { name: nic.ifname, bridge: args.attachment.bridge }
            : undefined,
        efiVarsTemplate: firmware?.varsTemplate,
        ssh: { host: node.ip, user },
      }),
    );
    const seed = pulumi
      .all([args.sshPublicKey, args.hostKey.publicKey, args.hostKey.privateKey])
      .apply(([sshPublicKey, hostPublic, hostPrivate]) =>
        renderSeed({
          node,
          network: args.network,
          sshPublicKey,
          user,
          hostKey: { publicKey: hostPublic, privateKey: hostPrivate },
          prebaked: args.prebaked ?? false,
        }),
      );
    const bundle = pulumi.secret(
      pulumi
        .all([seed, args.sshPrivateKey, args.hostKey.publicKey])
        .apply(([s, privateKey, hostKey]) =>
          renderBundle({
            "qemu-argv": encodeArgv(argv),
            "disk-size": String(size.disk),
            "boot-timeout": String(args.bootTimeoutSeconds ?? 900),
            "stop-timeout": String(args.stopTimeoutSeconds ?? 60),
            "user-data": s.userData,
            "meta-data": s.metaData,
            "network-config": s.networkConfig,
            "ssh-private-key": privateKey,
            "host-key": hostKey,
          }),
        ),
    );
    // Not secret, unlike the bundle: shows in the diff which part of the VM changed.
    const seedHash = seed.apply((s) =>
      crypto.createHash("sha256").update(JSON.stringify(s)).digest("hex"),
    );
    const qemu = new EnsuredScript(
      `${name}-qemu`,
      {
        script: VM_SCRIPT,
        args: flags,
        stdin: bundle,
        asRoot: true,
        triggers: [pulumi.output(argv.join(" ")), seedHash, String(size.disk)],
        // Create boots the VM and waits for SSH; give it the boot timeout and some to spare.
        timeoutSeconds: (args.bootTimeoutSeconds ?? 900) + 120,
      },
      { parent: this },
    );

    this.nodeName = node.name;
    this.ip = node.ip;
    this.mac = node.mac;
    this.stateDir = stateDir;
    this.serialLog = files.serialLog;
    this.qemuArgv = argv;
    this.sshHost = qemu.id.apply(() => node.ip);
    this.instance = qemu.output;
    this.hostKey = pulumi.output(args.hostKey.publicKey);
    this.registerOutputs({
      nodeName: this.nodeName,
      ip: this.ip,
      mac: this.mac,
      stateDir: this.stateDir,
      qemuArgv: this.qemuArgv,
      sshHost: this.sshHost,
      instance: this.instance,
    });
  }
}
