/**
 * The NoCloud seed of each VM (user-data, meta-data, network-config), rendered from plain data
 * by serialising objects. Pure; `cloud-init schema` checks the result in tests/vm.
 */
import { stringify } from "yaml";
import { SSH_USER } from "../cluster/outputs";
import { AddressPlan, NodeAddress, Role } from "../network/addressPlan";

/** The network facts a seed needs; a subset of the AddressPlan. */
export type SeedNetwork = Pick<AddressPlan, "hostIp" | "prefixLength" | "domain" | "apiVip">;

export interface SeedInput {
  readonly node: NodeAddress;
  readonly network: SeedNetwork;
  /** OpenSSH public key line authorised for the login user. */
  readonly sshPublicKey: string;
  /**
   * The VM's own SSH host key (Ed25519, OpenSSH encodings), so the host can pin it instead of
   * trusting whatever key answers first. @default none: the image generates its own
   */
  readonly hostKey?: { readonly publicKey: string; readonly privateKey: string };
  /** @default SSH_USER ("ubuntu", the cloud image's default user) */
  readonly user?: string;
  /**
   * The image already holds the role's packages (see rolePackages): nothing is installed, so
   * the VM needs no package mirror to boot. @default false
   */
  readonly prebaked?: boolean;
}

export interface SeedFiles {
  readonly userData: string;
  readonly metaData: string;
  readonly networkConfig: string;
}

/**
 * Packages per role. The gateway balances the API with IPVS in direct-routing mode. Every
 * kubelet node needs an NFS client for the default StorageClass and the tools kubelet and
 * kube-proxy shell out to (conntrack, ipset, iptables; socat for port-forward).
 */
export function rolePackages(role: Role): string[] {
  if (role === "gateway") {
    return ["ipvsadm", "ldirectord"];
  }
  return ["nfs-common", "conntrack", "socat", "ipset", "iptables", "ebtables", "ethtool"];
}

/** Kernel modules loaded at once and on every boot. */
export function roleModules(role: Role): string[] {
  // ldirectord loads the ip_vs scheduler modules it needs on its own.
  return role === "gateway" ? ["ip_vs"] : ["overlay", "br_netfilter"];
}

/** Kernel parameters set at once and on every boot. */
export function roleSysctls(role: Role): Record<string, string> {
  if (role === "gateway") {
    return {
      // IPVS keeps sending an existing connection to a real server ldirectord removed, so a
      // kubelet's watch would hang on a dead API server; expire such connections at once so
      // clients reconnect to a live one.
      "net.ipv4.vs.expire_nodest_conn": "1",
      "net.ipv4.vs.expire_quiescent_template": "1",
    };
  }
  const node: Record<string, string> = {
    // Pod traffic is routed between the node's bridge and its NIC.
    "net.ipv4.ip_forward": "1",
    // Bridged pod traffic must traverse iptables, or Service DNAT never happens.
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
  };
  return node;
}

/**
 * A control node holds the API VIP on lo for IPVS direct routing: it answers ARP only for
 * addresses of the interface a request came in on, and never uses the VIP as the source of its
 * own ARP requests. Otherwise it answers for the VIP on its NIC and clients send the VIP's
 * packets to it instead of the gateway. VIP_UNIT applies them before the VIP exists.
 */
export const VIP_ARP_SYSCTLS: Readonly<Record<string, string>> = {
  "net.ipv4.conf.all.arp_ignore": "1",
  "net.ipv4.conf.all.arp_announce": "2",
};

const MODULES_FILE = "/etc/modules-load.d/hardway.conf";
const SYSCTL_FILE = "/etc/sysctl.d/60-hardway.conf";
export const VIP_SYSCTL_FILE = "/etc/sysctl.d/61-hardway-api-vip.conf";
export const VIP_UNIT = "hardway-api-vip.service";

const sysctlFile = (sysctls: Readonly<Record<string, string>>) =>
  Object.entries(sysctls)
    .map(([k, v]) => `${k} = ${v}\n`)
    .join("");

/**
 * The unit that puts the API VIP on a control node's lo, always after the ARP settings: at
 * every boot after systemd-sysctl has read VIP_SYSCTL_FILE, and at the first boot (when
 * cloud-init writes that file only after the network is up) by applying it itself first.
 * Netplan would add the VIP as soon as the network comes up, before any of that.
 */
export function renderVipUnit(apiVip: string): string {
  return [
    "[Unit]",
    "Description=The API VIP on lo for IPVS direct routing, after the ARP settings that keep it unannounced",
    "After=systemd-sysctl.service",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=sysctl -p ${VIP_SYSCTL_FILE}`,
    `ExecStart=ip address replace ${apiVip}/32 dev lo`,
    `ExecStop=ip address delete ${apiVip}/32 dev lo`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** The `#cloud-config` user-data of one node. */
export function renderUserData(input: SeedInput): string {
  const { node } = input;
  const user = input.user ?? SSH_USER;
  const modules = roleModules(node.role);
  const sysctls = roleSysctls(node.role);
  const writeFiles = [
    { path: MODULES_FILE, permissions: "0644", content: modules.map((m) => `${m}\n`).join("") },
  ];
  const runcmd: string[][] = [["modprobe", "-a", ...modules]];
  if (Object.keys(sysctls).length > 0) {
    writeFiles.push({ path: SYSCTL_FILE, permissions: "0644", content: sysctlFile(sysctls) });
    runcmd.push(["sysctl", "-p", SYSCTL_FILE]);
  }
  if (node.role === "control") {
    writeFiles.push(
      { path: VIP_SYSCTL_FILE, permissions: "0644", content: sysctlFile(VIP_ARP_SYSCTLS) },
      {
        path: `/etc/systemd/system/${VIP_UNIT}`,
        permissions: "0644",
        content: renderVipUnit(input.network.apiVip),
      },
    );
    runcmd.push(["systemctl", "enable", "--now", VIP_UNIT]);
  }
  const config = {
    hostname: node.name,
    fqdn: node.fqdn,
    prefer_fqdn_over_hostname: false,
    manage_etc_hosts: true,
    users: [
      {
        name: user,
        gecos: "hardway administrator",
        groups: ["adm", "sudo"],
        shell: "/bin/bash",
        sudo: "ALL=(ALL) NOPASSWD:ALL",
        lock_passwd: true,
        ssh_authorized_keys: [input.sshPublicKey.trim()],
      },
    ],
    ssh_pwauth: false,
    disable_root: true,
    ...(input.hostKey === undefined
      ? {}
      : {
          // Only the host key the PKI made: the host pins it (see cluster/ssh.ts).
          ssh_deletekeys: true,
          ssh_genkeytypes: [],
          ssh_keys: {
            ed25519_private: input.hostKey.privateKey,
            ed25519_public: input.hostKey.publicKey.trim(),
          },
        }),
    ...(input.prebaked
      ? {}
      : {
          package_update: true,
          // Upgrading on first boot makes boot time and package versions depend on the day.
          package_upgrade: false,
          package_reboot_if_required: false,
          packages: rolePackages(node.role),
        }),
    write_files: writeFiles,
    // write_files runs before runcmd; the files make the settings survive reboots, these apply
    // them now without one.
    runcmd,
  };
  return `#cloud-config\n${stringify(config, { lineWidth: 0 })}`;
}

/** NoCloud meta-data: the instance id stays the node name, so cloud-init runs once per disk. */
export function renderMetaData(node: NodeAddress): string {
  return stringify({ "instance-id": node.name, "local-hostname": node.name });
}

/**
 * Netplan v2: a static address on the NIC with the node's MAC, the host as router and DNS
 * server. The gateway, IPVS's director, owns the API VIP on its NIC and answers ARP for it.
 * Control nodes hold the VIP on lo too (IPVS direct routing delivers packets addressed to the
 * VIP unchanged, so the node must own it without announcing it), but from VIP_UNIT, not here.
 */
export function renderNetworkConfig(node: NodeAddress, network: SeedNetwork): string {
  const ethernets: Record<string, unknown> = {
    primary: {
      match: { macaddress: node.mac },
      "set-name": "eth0",
      dhcp4: false,
      dhcp6: false,
      addresses: [
        `${node.ip}/${network.prefixLength}`,
        ...(node.role === "gateway" ? [`${network.apiVip}/32`] : []),
      ],
      routes: [{ to: "default", via: network.hostIp }],
      nameservers: { addresses: [network.hostIp], search: [network.domain] },
    },
  };
  return stringify({ network: { version: 2, ethernets } });
}

export function renderSeed(input: SeedInput): SeedFiles {
  return {
    userData: renderUserData(input),
    metaData: renderMetaData(input.node),
    networkConfig: renderNetworkConfig(input.node, input.network),
  };
}
