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
 * save it: `pulumi stack output sshPrivateKey --show-secrets > <identityFile>`. Each VM's host
 * key is pinned: the program generated it (Pki.hostKeys) and it survives a VM's re-creation, so
 * ssh checks it strictly. KnownHostsCommand (OpenSSH 8.5+) hands ssh that one key, under an
 * alias of the stack and node, and no known_hosts file is touched.
 */
export function sshConfigSnippet(
  plan: AddressPlan,
  identityFile: string,
  user: string,
  hostKeys: Readonly<Record<string, string>>,
  cluster: string,
): string {
  return plan.nodes
    .map((n) => {
      const alias = `${cluster}-${n.name}`;
      // Type and key only: a comment would become part of the echoed known_hosts line.
      const key = hostKeys[n.name]?.trim().split(/\s+/).slice(0, 2).join(" ");
      if (key === undefined || !/^ssh-ed25519 [A-Za-z0-9+/=]+$/.test(key)) {
        throw new Error(`no OpenSSH ed25519 host key for ${n.name}`);
      }
      return [
        `Host ${n.name} ${n.fqdn}`,
        `  HostName ${n.ip}`,
        `  User ${user}`,
        `  IdentityFile ${identityFile}`,
        "  IdentitiesOnly yes",
        `  HostKeyAlias ${alias}`,
        `  KnownHostsCommand /bin/echo ${alias} ${key}`,
        "  StrictHostKeyChecking yes",
        "  UserKnownHostsFile /dev/null",
        "  LogLevel ERROR",
        "",
      ].join("\n");
    })
    .join("\n");
}
