/**
 * The project's own dnsmasq configuration: DHCP with a static lease per VM and DNS for every name
 * of the address plan, served on the VM network only. Pure; `dnsmasq --test` checks the output.
 */
import { AddressPlan } from "../network/addressPlan";
import { HostPlatform } from "./platform";

/** One line of a dnsmasq config file: a bare flag (`bind-interfaces`) or `key=value`. */
export type DnsmasqEntry = readonly [key: string, value?: string];

export interface DnsmasqOptions {
  /** Linux: the bridge dnsmasq serves. macOS: ignored, vmnet names its bridge itself. */
  readonly interface: string;
  /** Root-owned directory for the pid and lease files of the project's own dnsmasq. */
  readonly stateDir: string;
  readonly platform: HostPlatform;
  /** Tags this stack's DHCP range and options, so stacks sharing one dnsmasq stay apart. */
  readonly tag: string;
  /** How long a DHCP lease lasts; the VMs' static leases are renewed long before. */
  readonly leaseTime?: string;
}

/** File names inside the state dir; the network scripts look for the same names. */
export const DNSMASQ_FILES = {
  config: "dnsmasq.conf",
  pid: "dnsmasq.pid",
  leases: "dnsmasq.leases",
} as const;

export function dnsmasqEntries(plan: AddressPlan, options: DnsmasqOptions): DnsmasqEntry[] {
  const { tag } = options;
  return [
    ...listening(plan, options),
    // The host's /etc/hosts names the workstation's own view of the world, not the VM network.
    ["no-hosts"],
    // Unqualified names and private reverse lookups must not leak to the upstream resolver.
    ["domain-needed"],
    ["bogus-priv"],
    ["local", `/${plan.domain}/`],
    ["domain", `${plan.domain},${plan.subnet}`],
    ...plan.dnsRecords.map((r): DnsmasqEntry => [
      "host-record",
      `${r.name},${r.name}.${plan.domain},${r.ip}`,
    ]),
    [
      "dhcp-range",
      `set:${tag},${plan.dhcpRange.first},${plan.dhcpRange.last},${plan.netmask},${options.leaseTime ?? "12h"}`,
    ],
    ["dhcp-option", `tag:${tag},option:router,${plan.hostIp}`],
    ["dhcp-option", `tag:${tag},option:dns-server,${plan.hostIp}`],
    ["dhcp-option", `tag:${tag},option:domain-search,${plan.domain}`],
    // Static leases are outside the dynamic range; the host is the only DHCP server on the net.
    ["dhcp-authoritative"],
    ...plan.nodes.map((n): DnsmasqEntry => ["dhcp-host", `${n.mac},${n.ip},${n.name}`]),
  ];
}

function listening(plan: AddressPlan, options: DnsmasqOptions): DnsmasqEntry[] {
  if (options.platform === "darwin") {
    // vmnet creates its bridge (bridge100, 101 …) only while a VM runs and picks the name
    // itself, so listen on the host address and bind it whenever it appears.
    return [["listen-address", plan.hostIp], ["bind-dynamic"]];
  }
  const file = (name: string) => `${options.stateDir}/${name}`;
  return [
    ["interface", options.interface],
    // --interface adds loopback implicitly; a system dnsmasq or resolver already owns it.
    ["except-interface", "lo"],
    // Bind the bridge's address only, so port 53 of every other interface stays free.
    ["bind-interfaces"],
    ["pid-file", file(DNSMASQ_FILES.pid)],
    ["dhcp-leasefile", file(DNSMASQ_FILES.leases)],
  ];
}

export function serializeDnsmasq(entries: readonly DnsmasqEntry[]): string {
  return entries
    .map(([key, value]) => {
      for (const part of [key, value ?? ""]) {
        if (/[\r\n]/.test(part)) {
          throw new Error(
            `dnsmasq entry ${JSON.stringify(key)} must be one line, got ${JSON.stringify(part)}`,
          );
        }
      }
      return value === undefined ? key : `${key}=${value}`;
    })
    .map((line) => `${line}\n`)
    .join("");
}

export function renderDnsmasqConfig(plan: AddressPlan, options: DnsmasqOptions): string {
  return serializeDnsmasq(dnsmasqEntries(plan, options));
}
