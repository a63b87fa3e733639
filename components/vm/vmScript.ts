/**
 * The calling convention of assets/vm/vm.sh and assets/vm/fetch-image.sh, as pure functions: the
 * `--flag value` list and the stdin bundle. Secrets only ever go into the bundle.
 */
/** vm.sh relative to assets/, as EnsuredScript takes it. */
export const VM_SCRIPT = "vm/vm.sh";

/** Names vm.sh accepts in its stdin bundle. */
export type BundleEntry =
  | "qemu-argv"
  | "disk-size"
  | "boot-timeout"
  | "stop-timeout"
  | "user-data"
  | "meta-data"
  | "network-config"
  | "ssh-private-key"
  | "host-key";

/** One `<name> <base64>` line per entry, so any content (keys, NULs, newlines) survives. */
export function renderBundle(entries: Readonly<Partial<Record<BundleEntry, string>>>): string {
  return Object.entries(entries)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([name, content]) => `${name} ${Buffer.from(content, "utf8").toString("base64")}\n`)
    .join("");
}

/** An argv as vm.sh reads it: every argument terminated by NUL, so spaces need no quoting. */
export function encodeArgv(argv: readonly string[]): string {
  for (const arg of argv) {
    if (arg.includes("\0")) {
      throw new Error(`a QEMU argument cannot contain NUL: ${JSON.stringify(arg)}`);
    }
  }
  return argv.map((a) => `${a}\0`).join("");
}

export interface VmScriptOptions {
  /** The VM's own state directory (absolute). */
  readonly stateDir: string;
  readonly baseImage: string;
  /** Linux bridge networking: the VM's tap and the bridge it joins. */
  readonly tap?: { readonly name: string; readonly bridge: string };
  /** UEFI boot: the template vm.sh copies to the VM's own variable store once. */
  readonly efiVarsTemplate?: string;
  /** Wait until SSH answers as this user at this address. */
  readonly ssh?: { readonly host: string; readonly user: string };
}

/**
 * The `--flag value` arguments of every vm.sh action (create, status and delete take the same).
 * They identify the VM: EnsuredScript replaces the VM, disk and all, when they change. What may
 * change in place (argv, disk size, seed) travels in the bundle instead.
 */
export function vmScriptFlags(o: VmScriptOptions): string[] {
  const flags = ["--state-dir", o.stateDir, "--base-image", o.baseImage];
  if (o.tap !== undefined) {
    flags.push("--tap", o.tap.name, "--bridge", o.tap.bridge);
  }
  if (o.efiVarsTemplate !== undefined) {
    flags.push("--efi-vars-template", o.efiVarsTemplate);
  }
  if (o.ssh !== undefined) {
    flags.push("--ssh-host", o.ssh.host, "--ssh-user", o.ssh.user);
  }
  return flags;
}
