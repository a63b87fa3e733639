/**
 * Names and places on the host that several components must agree on. Pure.
 */
import * as crypto from "node:crypto";

/** Linux interface names are limited to 15 bytes (IFNAMSIZ - 1). */
export const MAX_IFNAME = 15;

/** A short, stable hash so long stack names still give distinct, valid interface names. */
export function shortHash(text: string, length = 4): string {
  return crypto.createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** Where a stack keeps its VM disks, seed images, sockets, logs and dnsmasq state (root-owned). */
export function stackStateDir(stack: string, root = "/var/lib/hardway"): string {
  return `${root}/${stack}`;
}

/** Where one VM's disk, seed image, firmware variables, socket and logs live. */
export function vmStateDir(stack: string, node: string, root?: string): string {
  return `${stackStateDir(stack, root)}/vms/${node}`;
}

/** How QEMU attaches a VM's NIC to the host network, decided by the host network component. */
export type VmNetwork =
  /** Linux: a tap device per VM, enslaved to this bridge. */
  | { readonly kind: "bridge"; readonly bridge: string }
  /** macOS: QEMU's vmnet-shared backend; vmnet itself creates the bridge and NAT. */
  | {
      readonly kind: "vmnet-shared";
      readonly startAddress: string;
      readonly endAddress: string;
      readonly subnetMask: string;
    };

/** The bridge a stack's VMs share on Linux, e.g. `hw-dev-1a2b`; fits IFNAMSIZ for any stack name. */
/** Every stack's bridge name starts with this. */
export const BRIDGE_PREFIX = "hw-";

export function bridgeName(stack: string): string {
  const suffix = `-${shortHash(stack)}`;
  const stem = `${BRIDGE_PREFIX}${sanitize(stack, /[^a-z0-9-]/g, "-")}`.slice(
    0,
    MAX_IFNAME - suffix.length,
  );
  return `${stem.replace(/-+$/, "")}${suffix}`;
}

/**
 * The nftables table that holds a stack's NAT rules. Deleting the table removes every rule the
 * stack added, and no other stack's or the user's rules, so the name must be unique per stack.
 */
export function natTableName(stack: string): string {
  return `hardway_${sanitize(stack, /[^a-z0-9_]/g, "_").slice(0, 32)}_${shortHash(stack)}`;
}

/** Stack names may hold upper case, dots and underscores; interface and nft names are stricter. */
function sanitize(stack: string, disallowed: RegExp, replacement: string): string {
  return stack.toLowerCase().replace(disallowed, replacement);
}
