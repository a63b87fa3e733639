/**
 * The address plan: every name, IP, MAC and CIDR of the cluster, derived from the validated
 * config alone. No other module decides an address.
 */
import { CLUSTER_DOMAIN, HOST_PARTS, HardwayConfig } from "../config/schema";
import {
  formatAddress,
  mask,
  formatCidr,
  nthAddress,
  nthSubnet,
  parseCidr,
  parseRange,
} from "./ipv4";

export type Role = "gateway" | "control" | "worker";

export interface NodeAddress {
  /** Short host name, also the Kubernetes node name: gateway, control0, worker2 … */
  readonly name: string;
  readonly role: Role;
  readonly ip: string;
  /** Locally administered MAC that embeds the IP, so a lease can be read at a glance. */
  readonly mac: string;
  readonly fqdn: string;
  /**
   * The node's own /24 of the cluster CIDR, numbered by the last octet of its address (worker0
   * at .21: 10.200.21.0/24), so it stays when other nodes come and go; only nodes that run a
   * kubelet have one.
   */
  readonly podCidr?: string;
}

export interface DnsRecord {
  readonly name: string;
  readonly ip: string;
}

export interface AddressPlan {
  readonly subnet: string;
  readonly netmask: string;
  readonly prefixLength: number;
  readonly domain: string;
  /** The host's address on the VM network: gateway for the VMs, DNS, DHCP and NFS server. */
  readonly hostIp: string;
  readonly apiVip: string;
  /** DNS name of the API virtual IP, resolvable from every VM. */
  readonly apiName: string;
  readonly apiPort: number;
  readonly apiServerUrl: string;
  readonly dhcpRange: { readonly first: string; readonly last: string };
  readonly metallbPool: { readonly first: string; readonly last: string };
  readonly clusterCidr: string;
  readonly serviceCidr: string;
  /** First address of the service CIDR: the `kubernetes.default` Service. */
  readonly apiServiceIp: string;
  readonly clusterDnsIp: string;
  readonly clusterDomain: string;
  readonly gateway: NodeAddress;
  readonly controls: readonly NodeAddress[];
  readonly workers: readonly NodeAddress[];
  /** Every VM, gateway first. */
  readonly nodes: readonly NodeAddress[];
  /** Every VM that runs a kubelet (control nodes and workers). */
  readonly kubeletNodes: readonly NodeAddress[];
  readonly dnsRecords: readonly DnsRecord[];
}

export const API_PORT = 6443;
export { CLUSTER_DOMAIN };

export function macFor(ip: string): string {
  const octets = ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0"));
  return ["52", "54", ...octets].join(":");
}

type NetworkConfig = Pick<
  HardwayConfig,
  "subnet" | "clusterCidr" | "serviceCidr" | "metallbPool" | "controlPlanes" | "workers" | "domain"
>;

export function addressPlan(config: NetworkConfig): AddressPlan {
  const subnet = parseCidr(config.subnet);
  const at = (hostPart: number) => formatAddress(nthAddress(subnet, hostPart));
  const cluster = parseCidr(config.clusterCidr);
  const service = parseCidr(config.serviceCidr);
  const node = (name: string, role: Role, hostPart: number): NodeAddress => {
    const ip = at(hostPart);
    return {
      name,
      role,
      ip,
      mac: macFor(ip),
      fqdn: `${name}.${config.domain}`,
      ...(role === "gateway" ? {} : { podCidr: formatCidr(nthSubnet(cluster, 24, hostPart)) }),
    };
  };
  const gateway = node("gateway", "gateway", HOST_PARTS.gateway);
  const controls = Array.from({ length: config.controlPlanes }, (_, i) =>
    node(`control${i}`, "control", HOST_PARTS.firstControl + i),
  );
  const workers = Array.from({ length: config.workers }, (_, i) =>
    node(`worker${i}`, "worker", HOST_PARTS.firstWorker + i),
  );
  const hostIp = at(HOST_PARTS.host);
  const apiVip = at(HOST_PARTS.apiVip);
  const pool = parseRange(config.metallbPool);
  const nodes = [gateway, ...controls, ...workers];
  return {
    subnet: config.subnet,
    netmask: formatAddress(mask(subnet.prefix)),
    prefixLength: subnet.prefix,
    domain: config.domain,
    hostIp,
    apiVip,
    apiName: "kubernetes",
    apiPort: API_PORT,
    apiServerUrl: `https://${apiVip}:${API_PORT}`,
    dhcpRange: { first: at(HOST_PARTS.dhcp.first), last: at(HOST_PARTS.dhcp.last) },
    metallbPool: { first: formatAddress(pool.first), last: formatAddress(pool.last) },
    clusterCidr: config.clusterCidr,
    serviceCidr: config.serviceCidr,
    apiServiceIp: formatAddress(nthAddress(service, 1)),
    clusterDnsIp: formatAddress(nthAddress(service, 10)),
    clusterDomain: CLUSTER_DOMAIN,
    gateway,
    controls,
    workers,
    nodes,
    kubeletNodes: [...controls, ...workers],
    dnsRecords: [
      { name: "host", ip: hostIp },
      { name: "kubernetes", ip: apiVip },
      ...nodes.map((n) => ({ name: n.name, ip: n.ip })),
    ],
  };
}
