/** Plain functions that shape the stack outputs. */
import { AddressPlan, Role } from "../network/addressPlan";

export interface NodeOutput {
  readonly ip: string;
  readonly role: Role;
  readonly mac: string;
}

export function nodesOutput(plan: AddressPlan): Record<string, NodeOutput> {
  return Object.fromEntries(
    plan.nodes.map((n) => [n.name, { ip: n.ip, role: n.role, mac: n.mac }]),
  );
}

/** The user the cloud image creates and the VMs' cloud-init authorises the SSH key for. */
export const SSH_USER = "ubuntu";

/**
 * An ~/.ssh/config snippet for every VM. It expects the key where the README tells the user to
 * save it: `pulumi stack output sshPrivateKey --show-secrets > <identityFile>`.
 */
export function sshConfigSnippet(
  plan: AddressPlan,
  identityFile: string,
  user: string = SSH_USER,
): string {
  return plan.nodes
    .map((n) =>
      [
        `Host ${n.name} ${n.fqdn}`,
        `  HostName ${n.ip}`,
        `  User ${user}`,
        `  IdentityFile ${identityFile}`,
        "  IdentitiesOnly yes",
        // VMs are rebuilt with new host keys; pinning them would break every re-create.
        "  StrictHostKeyChecking no",
        "  UserKnownHostsFile /dev/null",
        "  LogLevel ERROR",
        "",
      ].join("\n"),
    )
    .join("\n");
}
