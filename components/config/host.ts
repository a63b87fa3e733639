/**
 * Checks of a valid configuration against the machine it is about to run on: files it names
 * must exist (refused), and choices that work but may hurt (warned). The facts are gathered by
 * `probeHost()`; the checks themselves are pure.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { cidrRange, mask, parseAddress, parseCidr, rangesOverlap } from "../network/ipv4";
import { HardwayConfig, HostFacts, PROJECT, hostArch } from "./schema";

/** What the checks need to know about the host. */
export interface HostEnvironment extends HostFacts {
  /** Whether a file exists at this absolute path. */
  readonly exists: (path: string) => boolean;
  /** IPv4 networks on the host's interfaces, as CIDRs ("192.168.1.23/24"), loopback excluded. */
  readonly interfaceNetworks: readonly string[];
  /** Physical memory in MiB. */
  readonly memoryMiB: number;
  readonly cpus: number;
}

export function probeHost(): HostEnvironment {
  const interfaceNetworks = Object.values(os.networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .filter((a) => a.family === "IPv4" && !a.internal && a.cidr !== null)
    .map((a) => a.cidr as string);
  return {
    os: process.platform,
    cpu: process.arch,
    exists: (path) => fs.existsSync(path),
    interfaceNetworks,
    memoryMiB: Math.floor(os.totalmem() / 2 ** 20),
    cpus: os.cpus().length,
  };
}

/** Files the configuration names that must be on the host. */
export function missingFiles(config: HardwayConfig, env: HostEnvironment): string[] {
  const wanted: [string, string | undefined][] = [
    ["image.path", config.image.path],
    ["image.kernel", config.image.kernel],
    ["image.initrd", config.image.initrd],
    ...config.podImages.map((p, i): [string, string] => [`podImages[${i}]`, p]),
  ];
  return wanted
    .filter(([, file]) => file !== undefined && !env.exists(file))
    .map(([name, file]) => `${PROJECT}:${name}: no file at ${file} on this host`);
}

/** Networks that home routers and Docker use by default. */
export const CROWDED_NETWORKS: readonly { readonly cidr: string; readonly who: string }[] = [
  { cidr: "192.168.0.0/24", who: "home routers" },
  { cidr: "192.168.1.0/24", who: "home routers" },
  { cidr: "192.168.2.0/24", who: "home routers" },
  { cidr: "192.168.178.0/24", who: "home routers (FRITZ!Box)" },
  { cidr: "10.0.0.0/24", who: "home routers" },
  { cidr: "172.17.0.0/16", who: "Docker's default bridge" },
  { cidr: "172.18.0.0/15", who: "Docker's user networks" },
  { cidr: "172.20.0.0/14", who: "Docker's user networks" },
  { cidr: "172.24.0.0/13", who: "Docker's user networks" },
];

/** Levenshtein distance, for namespace typos such as `hardwy:workers`. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

/**
 * Choices that work but may not do what the user wants. `configKeys` are every stack config key
 * (all namespaces), to catch a misspelt `hardway:`.
 */
export function configWarnings(
  config: HardwayConfig,
  env: HostEnvironment,
  configKeys: readonly string[],
): string[] {
  const warnings: string[] = [];
  for (const fullKey of configKeys) {
    const namespace = fullKey.split(":")[0];
    if (namespace !== PROJECT && distance(namespace, PROJECT) <= 2) {
      warnings.push(
        `${fullKey} is ignored: its namespace is "${namespace}", not "${PROJECT}"; did you mean ${PROJECT}:${fullKey.slice(namespace.length + 1)}?`,
      );
    }
  }

  const subnet = cidrRange(parseCidr(config.subnet));
  const hostAddress = subnet.first + 1;
  for (const network of CROWDED_NETWORKS) {
    if (rangesOverlap(subnet, cidrRange(parseCidr(network.cidr)))) {
      warnings.push(
        `${PROJECT}:subnet ${config.subnet} is on a network ${network.who} use (${network.cidr}); if the VMs cannot reach the internet, pick another private /24`,
      );
    }
  }
  for (const cidr of env.interfaceNetworks) {
    const [addressText, prefixText] = cidr.split("/");
    const address = parseAddress(addressText);
    if (address === hostAddress) {
      continue; // our own bridge (or vmnet's) holds .1 of the subnet
    }
    const prefix = Number(prefixText);
    const range = cidrRange({ network: (address & mask(prefix)) >>> 0, prefix });
    for (const name of ["subnet", "clusterCidr", "serviceCidr"] as const) {
      if (rangesOverlap(cidrRange(parseCidr(config[name])), range)) {
        warnings.push(
          `${PROJECT}:${name} ${config[name]} overlaps ${cidr} on one of this host's interfaces; traffic to those addresses may go the wrong way`,
        );
      }
    }
  }

  const roles = [
    ["gateway", 1],
    ["control", config.controlPlanes],
    ["worker", config.workers],
  ] as const;
  const memory = roles.reduce((sum, [role, count]) => sum + config.vm[role].memory * count, 0);
  if (memory > env.memoryMiB) {
    warnings.push(
      `the VMs declare ${memory} MiB of RAM and this host has ${env.memoryMiB} MiB; guests may be killed or swap (lower ${PROJECT}:vm.<role>.memory or ${PROJECT}:workers)`,
    );
  }
  for (const [role] of roles) {
    if (config.vm[role].cpus > env.cpus) {
      warnings.push(
        `${PROJECT}:vm.${role}.cpus ${config.vm[role].cpus} is more than this host's ${env.cpus} CPUs`,
      );
    }
  }
  if (hostArch(env) !== config.arch) {
    warnings.push(
      `${PROJECT}:arch ${config.arch} differs from this host's CPU (${env.cpu}): the VMs run under emulation (TCG), ten to a hundred times slower`,
    );
  }
  return warnings;
}
