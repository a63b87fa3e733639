/**
 * Checks of a valid configuration against the machine it is about to run on: files it names
 * must exist (refused), and choices that work but may hurt (warned). The facts are gathered by
 * `probeHost()`; the checks themselves are pure.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import { BRIDGE_PREFIX } from "../host/layout";
import {
  AddressRange,
  cidrRange,
  mask,
  parseAddress,
  parseCidr,
  rangeContains,
  rangesOverlap,
} from "../network/ipv4";
import { chartSource, installedCharts } from "./charts";
import { HardwayConfig, HostFacts, PROJECT, hostArch } from "./schema";

/** What the checks need to know about the host. */
export interface HostEnvironment extends HostFacts {
  /** Whether a file exists at this absolute path. */
  readonly exists: (path: string) => boolean;
  /** IPv4 addresses on the host's interfaces, loopback excluded. */
  readonly interfaces: readonly HostInterface[];
  /** IPv4 routes through a gateway (Linux; empty elsewhere), e.g. other stacks' pod routes. */
  readonly routes: readonly { readonly dst: string; readonly gateway: string }[];
  /** Physical memory in MiB. */
  readonly memoryMiB: number;
  readonly cpus: number;
}

export interface HostInterface {
  readonly name: string;
  /** Address and prefix, e.g. "192.168.1.23/24". */
  readonly cidr: string;
}

function linuxRoutes(): { dst: string; gateway: string }[] {
  const listed = spawnSync("ip", ["-j", "-4", "route", "show"], { encoding: "utf8" });
  if (listed.status !== 0) {
    return [];
  }
  const routes = JSON.parse(listed.stdout || "[]") as { dst: string; gateway?: string }[];
  return routes
    .filter((r) => r.gateway !== undefined && r.dst !== "default")
    .map((r) => ({
      dst: r.dst.includes("/") ? r.dst : `${r.dst}/32`,
      gateway: r.gateway as string,
    }));
}

export function probeHost(): HostEnvironment {
  const interfaces = Object.entries(os.networkInterfaces()).flatMap(([name, addresses]) =>
    (addresses ?? [])
      .filter((a) => a.family === "IPv4" && !a.internal && a.cidr !== null)
      .map((a) => ({ name, cidr: a.cidr as string })),
  );
  return {
    os: process.platform,
    cpu: process.arch,
    exists: (path) => fs.existsSync(path),
    interfaces,
    routes: process.platform === "linux" ? linuxRoutes() : [],
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
    ...Object.entries(config.registryMirrors).map(
      ([registry, mirror]): [string, string | undefined] => [
        `registryMirrors["${registry}"].ca`,
        mirror.ca,
      ],
    ),
    // A chart from a local directory is loaded at preview already.
    ...installedCharts(config).flatMap((name): [string, string][] => {
      const { chart } = chartSource(config.versions.charts[name], config.chartMirror);
      const key = config.chartMirror ? "chartMirror" : `versions.charts.${name}.repository`;
      return chart.startsWith("/") ? [[key, chart]] : [];
    }),
  ];
  return wanted
    .filter(([, file]) => file !== undefined && !env.exists(file))
    .map(([name, file]) => `${PROJECT}:${name}: no file at ${file} on this host`);
}

/** The network an interface address is on. */
function interfaceRange(cidr: string): AddressRange {
  const [address, prefix] = cidr.split("/");
  return cidrRange({
    network: (parseAddress(address) & mask(Number(prefix))) >>> 0,
    prefix: Number(prefix),
  });
}

/**
 * Networks another hardway stack on this host already uses: its bridge's subnet, and the pod
 * networks the host routes to its VMs. Two stacks on one network would answer each other's DHCP
 * and overwrite each other's routes. `ownBridge` is this stack's bridge (bridgeName(stack)).
 */
export function otherStackProblems(
  config: HardwayConfig,
  env: HostEnvironment,
  ownBridge: string,
): string[] {
  const problems: string[] = [];
  const others = env.interfaces.filter(
    (i) => i.name.startsWith(BRIDGE_PREFIX) && i.name !== ownBridge,
  );
  const subnet = cidrRange(parseCidr(config.subnet));
  const cluster = cidrRange(parseCidr(config.clusterCidr));
  for (const other of others) {
    const theirs = interfaceRange(other.cidr);
    if (rangesOverlap(subnet, theirs)) {
      problems.push(
        `${PROJECT}:subnet ${config.subnet} is the network of another hardway stack (bridge ${other.name}, ${other.cidr}); give this stack another private /24`,
      );
    }
    for (const route of env.routes) {
      const gateway = parseAddress(route.gateway);
      if (
        rangeContains(theirs, { first: gateway, last: gateway }) &&
        rangesOverlap(cluster, cidrRange(parseCidr(route.dst)))
      ) {
        problems.push(
          `${PROJECT}:clusterCidr ${config.clusterCidr} overlaps ${route.dst}, which the host routes to a VM of another hardway stack (bridge ${other.name}); give this stack another pod network, such as 10.201.0.0/16`,
        );
        break;
      }
    }
  }
  return problems;
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
  ownBridge: string,
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
  for (const network of CROWDED_NETWORKS) {
    if (rangesOverlap(subnet, cidrRange(parseCidr(network.cidr)))) {
      warnings.push(
        `${PROJECT}:subnet ${config.subnet} is on a network ${network.who} use (${network.cidr}); if the VMs cannot reach the internet, pick another private /24`,
      );
    }
  }
  for (const { name: ifname, cidr } of env.interfaces) {
    if (ifname === ownBridge || ifname.startsWith(BRIDGE_PREFIX)) {
      continue; // ours, or another stack's (refused by otherStackProblems)
    }
    const range = interfaceRange(cidr);
    for (const name of ["subnet", "clusterCidr", "serviceCidr"] as const) {
      if (rangesOverlap(cidrRange(parseCidr(config[name])), range)) {
        warnings.push(
          `${PROJECT}:${name} ${config[name]} overlaps ${cidr} on ${ifname}, one of this host's interfaces; traffic to those addresses may go the wrong way`,
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
