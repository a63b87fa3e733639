/**
 * QEMU command lines as plain data. Everything here is pure: the facts about the host (OS, CPU,
 * whether /dev/kvm is usable, where Homebrew lives) are passed in, so every platform can be
 * checked from any machine. `assets/vm/vm.sh` runs the argv as given and never builds one.
 */
import { Accelerator, Arch, hostArch } from "../config/schema";
import { MAX_IFNAME, VmNetwork, shortHash } from "../host/layout";

/** An accelerator QEMU can actually be started with (`auto` resolved). */
export type ResolvedAccelerator = Exclude<Accelerator, "auto">;

/** What the accelerator choice depends on; gathered by `probeVmHost()` in hostProbe.ts. */
export interface AcceleratorFacts {
  /** `process.platform` of the host. */
  readonly hostOs: NodeJS.Platform;
  /** `process.arch` of the host, e.g. "x64" or "arm64". */
  readonly hostCpu: string;
  /** Whether /dev/kvm exists and this user may open it read-write. */
  readonly kvmUsable: boolean;
}

/**
 * Picks the accelerator for a guest. Hardware acceleration only runs guests of the host's own
 * architecture; anything else is emulated with TCG. An explicit request that cannot work is
 * refused instead of silently falling back to a hundred times slower emulation.
 */
export function resolveAccelerator(
  requested: Accelerator,
  guestArch: Arch,
  facts: AcceleratorFacts,
): ResolvedAccelerator {
  const problem = acceleratorProblem(requested, guestArch, facts);
  if (problem !== undefined) {
    throw new Error(problem);
  }
  const native = hostArch({ os: facts.hostOs, cpu: facts.hostCpu }) === guestArch;
  const hardware = hardwareAccelerator(facts);
  if (requested === "auto") {
    return native && hardware !== undefined ? hardware : "tcg";
  }
  return requested;
}

function hardwareAccelerator(facts: AcceleratorFacts): ResolvedAccelerator | undefined {
  return facts.hostOs === "darwin"
    ? "hvf"
    : facts.hostOs === "linux" && facts.kvmUsable
      ? "kvm"
      : undefined;
}

/** Why an explicitly requested accelerator cannot run these guests here, if it cannot. */
export function acceleratorProblem(
  requested: Accelerator,
  guestArch: Arch,
  facts: AcceleratorFacts,
): string | undefined {
  const native = hostArch({ os: facts.hostOs, cpu: facts.hostCpu }) === guestArch;
  if (requested === "auto" || requested === "tcg") {
    return undefined;
  }
  if (!native) {
    return (
      `hardway:accelerator "${requested}" cannot run ${guestArch} guests on this ${facts.hostCpu} host; ` +
      `set hardway:accelerator to "tcg" (slow emulation) or hardway:arch to the host's architecture`
    );
  }
  if (requested === "hvf" && facts.hostOs !== "darwin") {
    return `hardway:accelerator "hvf" needs a macOS host (this one is ${facts.hostOs}); use "auto"`;
  }
  if (requested === "kvm" && hardwareAccelerator(facts) !== "kvm") {
    return facts.hostOs === "linux"
      ? 'hardway:accelerator "kvm" needs a usable /dev/kvm (load kvm_intel/kvm_amd and join the kvm group); or use "tcg"'
      : `hardway:accelerator "kvm" needs a Linux host (this one is ${facts.hostOs}); use "auto"`;
  }
  return undefined;
}

export function qemuBinary(arch: Arch): string {
  return arch === "arm64" ? "qemu-system-aarch64" : "qemu-system-x86_64";
}

/** `virt` is the only general-purpose arm64 board; `q35` is the modern PCIe x86 machine. */
export function machineType(arch: Arch): string {
  return arch === "arm64" ? "virt" : "q35";
}

/** Hardware accelerators pass the host CPU through; TCG emulates the richest model it knows. */
export function cpuModel(accelerator: ResolvedAccelerator): string {
  return accelerator === "tcg" ? "max" : "host";
}

/** UEFI firmware: the read-only code image and the template of the per-VM variable store. */
export interface Firmware {
  readonly code: string;
  readonly varsTemplate: string;
}

/**
 * Where the distribution puts UEFI firmware. Debian/Ubuntu: packages `ovmf` and
 * `qemu-efi-aarch64`. macOS: Homebrew's `qemu` formula, under `brew --prefix`.
 */
export function firmwareFor(
  arch: Arch,
  hostOs: NodeJS.Platform,
  homebrewPrefix = "/opt/homebrew",
): Firmware {
  if (hostOs === "darwin") {
    const dir = `${homebrewPrefix}/share/qemu`;
    return arch === "arm64"
      ? { code: `${dir}/edk2-aarch64-code.fd`, varsTemplate: `${dir}/edk2-arm-vars.fd` }
      : { code: `${dir}/edk2-x86_64-code.fd`, varsTemplate: `${dir}/edk2-i386-vars.fd` };
  }
  return arch === "arm64"
    ? { code: "/usr/share/AAVMF/AAVMF_CODE.fd", varsTemplate: "/usr/share/AAVMF/AAVMF_VARS.fd" }
    : { code: "/usr/share/OVMF/OVMF_CODE_4M.fd", varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.fd" };
}

/** How the VM's single NIC reaches the host network. */
export type NicAttachment =
  /** Linux: a tap device that vm.sh creates and enslaves to the bridge before QEMU starts. */
  | { readonly kind: "tap"; readonly ifname: string }
  /** macOS: vmnet-shared, exactly as the host network decided it. */
  | Extract<VmNetwork, { kind: "vmnet-shared" }>;

/** Linux direct kernel boot: no firmware, no bootloader. */
export interface DirectKernel {
  readonly kernel: string;
  readonly initrd?: string;
  readonly append?: string;
}

/** The kernel command line of a prebaked image's direct boot, unless the image names one. */
export const DEFAULT_KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 net.ifnames=0";

/** Direct boot of an image that names a kernel (hardway:image.kernel); none otherwise. Pure. */
export function directKernel(image: {
  readonly kernel?: string;
  readonly initrd?: string;
  readonly kernelArgs?: string;
}): DirectKernel | undefined {
  if (image.kernel === undefined) {
    return undefined;
  }
  return {
    kernel: image.kernel,
    initrd: image.initrd,
    append: image.kernelArgs ?? DEFAULT_KERNEL_ARGS,
  };
}

/** Every file a running VM uses, all inside its state directory. */
export interface VmFiles {
  readonly disk: string;
  readonly seedIso?: string;
  /** The per-VM copy of the UEFI variable store (firmware boot only). */
  readonly efiVars: string;
  readonly pidFile: string;
  readonly serialLog: string;
  readonly qmpSocket: string;
}

/** The layout of a VM's state directory; vm.sh creates exactly these names. */
export function vmFiles(stateDir: string): VmFiles {
  return {
    disk: `${stateDir}/disk.qcow2`,
    seedIso: `${stateDir}/seed.iso`,
    efiVars: `${stateDir}/efi-vars.fd`,
    pidFile: `${stateDir}/qemu.pid`,
    serialLog: `${stateDir}/serial.log`,
    qmpSocket: `${stateDir}/qmp.sock`,
  };
}

export interface QemuSpec {
  /** Shown by `ps` and in QEMU's messages. */
  readonly name: string;
  readonly arch: Arch;
  readonly accelerator: ResolvedAccelerator;
  readonly cpus: number;
  /** MiB. */
  readonly memory: number;
  readonly mac: string;
  readonly nic: NicAttachment;
  readonly files: VmFiles;
  /** UEFI boot from the disk; ignored when `kernel` is set. */
  readonly firmware?: Firmware;
  readonly kernel?: DirectKernel;
}

/**
 * MiB of translated code QEMU keeps for an emulated (TCG) guest: half its memory, at least 256.
 * When the cache is full QEMU flushes all of it and translates again whatever runs next. With
 * 256 MiB, the HA run's control nodes (2 GiB; etcd, an API server and the rest of a node) flushed
 * 46 times in 45 minutes; an idle Debian guest never fills it, hence the floor. QEMU's RSS grows
 * by what the cache holds. Pure.
 */
export function tcgCacheMiB(memoryMiB: number): number {
  return Math.max(256, Math.floor(memoryMiB / 2));
}

/** The complete argv (binary first) that starts the VM as a daemon. */
export function qemuArgv(spec: QemuSpec): string[] {
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1) {
    throw new Error(
      `VM ${spec.name}: cpus must be a whole number of at least 1 (got ${spec.cpus})`,
    );
  }
  if (!Number.isInteger(spec.memory) || spec.memory < 64) {
    throw new Error(
      `VM ${spec.name}: memory must be a whole number of MiB, at least 64 (got ${spec.memory})`,
    );
  }
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(spec.mac)) {
    throw new Error(
      `VM ${spec.name}: "${spec.mac}" is not a lowercase MAC address such as 52:54:c0:a8:ea:0a`,
    );
  }
  if (spec.kernel === undefined && spec.firmware === undefined) {
    throw new Error(
      `VM ${spec.name}: give either firmware (UEFI disk boot) or kernel (direct boot)`,
    );
  }
  const { files } = spec;
  const argv = [
    qemuBinary(spec.arch),
    "-name",
    spec.name,
    // Only the devices listed below: no default NIC, VGA, monitor or CD-ROM to surprise anyone.
    "-nodefaults",
    "-machine",
    machineType(spec.arch),
    "-accel",
    spec.accelerator === "tcg" ? `tcg,tb-size=${tcgCacheMiB(spec.memory)}` : spec.accelerator,
    "-cpu",
    cpuModel(spec.accelerator),
    "-smp",
    String(spec.cpus),
    "-m",
    `${spec.memory}M`,
  ];
  if (spec.kernel !== undefined) {
    argv.push("-kernel", spec.kernel.kernel);
    if (spec.kernel.initrd !== undefined) {
      argv.push("-initrd", spec.kernel.initrd);
    }
    if (spec.kernel.append !== undefined) {
      argv.push("-append", spec.kernel.append);
    }
  } else if (spec.firmware !== undefined) {
    argv.push(
      "-drive",
      `if=pflash,format=raw,unit=0,readonly=on,file=${spec.firmware.code}`,
      "-drive",
      `if=pflash,format=raw,unit=1,file=${files.efiVars}`,
    );
  }
  argv.push("-drive", `if=virtio,format=qcow2,file=${files.disk}`);
  if (files.seedIso !== undefined) {
    // cloud-init's NoCloud source finds this disk by its volume label, cidata.
    argv.push("-drive", `if=virtio,format=raw,readonly=on,file=${files.seedIso}`);
  }
  argv.push("-netdev", netdev(spec.nic), "-device", `virtio-net-pci,netdev=net0,mac=${spec.mac}`);
  argv.push(
    // Cloud images generate SSH host keys on first boot; without entropy that can stall.
    "-device",
    "virtio-rng-pci",
    "-display",
    "none",
    "-chardev",
    // Appending keeps the log of earlier boots, which is what one reads after a failed restart.
    `file,id=serial0,path=${files.serialLog},append=on`,
    "-serial",
    "chardev:serial0",
    "-qmp",
    `unix:${files.qmpSocket},server=on,wait=off`,
    "-pidfile",
    files.pidFile,
    "-daemonize",
  );
  return argv;
}

function netdev(nic: NicAttachment): string {
  switch (nic.kind) {
    case "tap":
      // vm.sh creates and enslaves the tap itself, so QEMU runs no helper scripts.
      return `tap,id=net0,ifname=${nic.ifname},script=no,downscript=no`;
    case "vmnet-shared":
      return (
        `vmnet-shared,id=net0,start-address=${nic.startAddress},` +
        `end-address=${nic.endAddress},subnet-mask=${nic.subnetMask}`
      );
  }
}

/**
 * The tap device of one VM: unique per stack and node, stable across runs, and within the 15
 * bytes Linux allows (`hw` + stack hash + `-` + node; node names too long are hashed too).
 */
export function tapName(stack: string, node: string): string {
  const readable = `hw${shortHash(stack)}-${node}`;
  if (readable.length <= MAX_IFNAME && /^[a-z0-9-]+$/.test(node)) {
    return readable;
  }
  return `hw${shortHash(`${stack}/${node}`, MAX_IFNAME - 2)}`;
}
