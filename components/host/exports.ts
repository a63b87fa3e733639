/**
 * The NFS export of the stack's volume directory, and the marked block that carries it in a
 * shared file such as /etc/exports. Pure; the network scripts apply the same block rules.
 */
import { AddressPlan } from "../network/addressPlan";
import { HostPlatform } from "./platform";

/**
 * Linux exportfs syntax. Root squashing is off: the NFS provisioner (root in its pod) creates
 * and removes a directory per volume, and pods write as whatever user their image runs as. The
 * exposure is bounded by the network, not by the options: the subnet lives on a host-only
 * bridge (or vmnet) that holds only this stack's VMs and is NATed outwards, never bridged to a
 * physical interface, so nothing outside the host can reach the export.
 */
export function linuxExportLine(dir: string, subnet: string): string {
  return `${dir} ${subnet}(rw,sync,no_subtree_check,no_root_squash)`;
}

/** macOS nfsd syntax: one network and mask per line, any subdirectory mountable. */
export function macosExportLine(dir: string, network: string, netmask: string): string {
  return `${dir} -network ${network} -mask ${netmask} -alldirs -maproot=root`;
}

export function exportLine(platform: HostPlatform, dir: string, plan: AddressPlan): string {
  if (/\s/.test(dir)) {
    throw new Error(`the NFS export directory must not contain white space, got "${dir}"`);
  }
  return platform === "darwin"
    ? macosExportLine(dir, plan.subnet.split("/")[0], plan.netmask)
    : linuxExportLine(dir, plan.subnet);
}

export function blockMarkers(stack: string): { readonly begin: string; readonly end: string } {
  return { begin: `# BEGIN hardway ${stack}`, end: `# END hardway ${stack}` };
}

/**
 * Puts `lines` between the stack's markers in `text`: in place when the block exists, else at
 * the end. `undefined` removes the block. Every other line, including other stacks' blocks,
 * is kept as it was, and applying the same block twice gives the same text.
 */
export function replaceMarkedBlock(
  text: string,
  stack: string,
  lines: readonly string[] | undefined,
): string {
  const { begin, end } = blockMarkers(stack);
  const block = lines === undefined ? [] : [begin, ...lines, end];
  const kept: string[] = [];
  let inside = false;
  let placed = false;
  for (const line of splitLines(text)) {
    if (!inside && line === begin) {
      inside = true;
      if (!placed) {
        kept.push(...block);
        placed = true;
      }
    } else if (inside) {
      inside = line !== end;
    } else {
      kept.push(line);
    }
  }
  if (!placed) {
    kept.push(...block);
  }
  return kept.map((line) => `${line}\n`).join("");
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  return lines[lines.length - 1] === "" ? lines.slice(0, -1) : lines;
}
