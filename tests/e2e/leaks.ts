/**
 * What a stack may leave on the host, and a check that `pulumi destroy` left none of it. The
 * check is a pure function of a HostState snapshot; readHostState takes the snapshot from the
 * real host. Every name is derived with the same functions the program uses to create it, so the
 * check cannot drift from what `up` does.
 */
import * as fs from "node:fs";
import { blockMarkers } from "../../components/host/exports";
import { bridgeName, natTableName, shortHash, stackStateDir } from "../../components/host/layout";
import { tapName } from "../../components/vm/qemu";
import { CommandResult } from "../smoke/clusterApi";
import { runCommand } from "../smoke/run";

export interface HostProcess {
  readonly pid: number;
  /** The whole command line, arguments joined by spaces. */
  readonly command: string;
}

export interface HostLink {
  readonly ifname: string;
  /** `linkinfo.info_kind` of `ip -d link`: bridge, tun, veth … */
  readonly kind?: string;
  /** The bridge the link is enslaved to. */
  readonly master?: string;
}

export interface HostRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
}

export interface NftTable {
  readonly family: string;
  readonly name: string;
}

export interface HostState {
  readonly processes: readonly HostProcess[];
  readonly links: readonly HostLink[];
  readonly routes: readonly HostRoute[];
  readonly nftTables: readonly NftTable[];
  /** `iptables -S` lines (filter table, every chain). */
  readonly iptablesRules: readonly string[];
  /** Text of /etc/exports ("" when absent). */
  readonly exportsText: string;
  /** macOS: Homebrew's dnsmasq.conf, which holds one marked block per stack ("" when absent). */
  readonly sharedDnsmasqConf: string;
  /** Full paths of the entries of the state root, e.g. /var/lib/hardway/dev. */
  readonly stateDirs: readonly string[];
}

export type LeakKind =
  | "vm-process"
  | "tap"
  | "bridge"
  | "nat-table"
  | "nat-rule"
  | "dnsmasq"
  | "export-block"
  | "pod-route"
  | "state-dir";

export interface Leak {
  readonly kind: LeakKind;
  readonly what: string;
}

export interface LeakTarget {
  readonly stack: string;
  /** Node names and addresses from the stack's `nodes` output, read while the stack existed. */
  readonly nodes: Readonly<Record<string, { readonly ip: string; readonly role: string }>>;
  /** @default "/var/lib/hardway" */
  readonly stateRoot?: string;
}

/** Whether the joined command line names `path` as a whole path or a prefix of one. */
function mentionsPath(command: string, dir: string): boolean {
  return command.split(/[\s=,]/).some((word) => word === dir || word.startsWith(`${dir}/`));
}

function programName(command: string): string {
  return (command.split(" ")[0] ?? "").split("/").pop() ?? "";
}

/** Everything in `state` that belongs to the stack; an empty list means the host is clean. */
export function findLeaks(state: HostState, target: LeakTarget): Leak[] {
  const { stack } = target;
  const stateDir = stackStateDir(stack, target.stateRoot);
  const bridge = bridgeName(stack);
  const nodeNames = Object.keys(target.nodes);
  const taps = new Set(nodeNames.map((node) => tapName(stack, node)));
  const tapPrefix = `hw${shortHash(stack)}-`;
  const kubeletIps = new Set(
    Object.values(target.nodes)
      .filter((n) => n.role !== "gateway")
      .map((n) => n.ip),
  );
  const leaks: Leak[] = [];
  const add = (kind: LeakKind, what: string) => leaks.push({ kind, what });

  for (const process of state.processes) {
    const program = programName(process.command);
    if (!mentionsPath(process.command, stateDir)) {
      continue;
    }
    if (program.startsWith("qemu-system")) {
      add("vm-process", `pid ${process.pid}: ${process.command}`);
    } else if (program === "dnsmasq") {
      add("dnsmasq", `pid ${process.pid}: ${process.command}`);
    }
  }
  for (const link of state.links) {
    if (link.ifname === bridge) {
      add("bridge", link.ifname);
    } else if (
      taps.has(link.ifname) ||
      link.ifname.startsWith(tapPrefix) ||
      link.master === bridge
    ) {
      add("tap", link.ifname);
    }
  }
  const natTable = natTableName(stack);
  for (const table of state.nftTables) {
    if (table.name === natTable) {
      add("nat-table", `${table.family} ${table.name}`);
    }
  }
  const tag = `hardway-${bridge}`;
  for (const rule of state.iptablesRules) {
    if (rule.split(/\s+/).some((word) => word.replace(/^"|"$/g, "") === tag)) {
      add("nat-rule", rule);
    }
  }
  const { begin } = blockMarkers(stack);
  const hasBlock = (text: string) => text.split("\n").some((line) => line === begin);
  if (hasBlock(state.exportsText)) {
    add("export-block", `/etc/exports: ${begin}`);
  }
  if (hasBlock(state.sharedDnsmasqConf)) {
    add("dnsmasq", `Homebrew dnsmasq.conf: ${begin}`);
  }
  for (const route of state.routes) {
    if (route.gateway !== undefined && kubeletIps.has(route.gateway)) {
      add("pod-route", `${route.dst} via ${route.gateway}`);
    }
  }
  if (state.stateDirs.includes(stateDir)) {
    add("state-dir", stateDir);
  }
  return leaks;
}

// ---- reading the real host ------------------------------------------------------------------

export type Runner = (program: string, args: readonly string[]) => Promise<CommandResult>;

/** `ps` prints `  123 /usr/bin/qemu-system-x86_64 -name …`. */
export function parsePs(text: string): HostProcess[] {
  return text
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(.*\S)\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), command: m[2] }));
}

interface IpLinkJson {
  ifname?: string;
  master?: string;
  linkinfo?: { info_kind?: string };
}

export function parseIpLink(json: string): HostLink[] {
  return (JSON.parse(json) as IpLinkJson[])
    .filter((l) => typeof l.ifname === "string")
    .map((l) => ({ ifname: l.ifname ?? "", kind: l.linkinfo?.info_kind, master: l.master }));
}

export function parseIpRoute(json: string): HostRoute[] {
  return (JSON.parse(json) as HostRoute[]).map((r) => ({
    dst: r.dst,
    gateway: r.gateway,
    dev: r.dev,
  }));
}

export function parseNftTables(json: string): NftTable[] {
  const parsed = JSON.parse(json) as { nftables?: { table?: NftTable }[] };
  return (parsed.nftables ?? [])
    .map((entry) => entry.table)
    .filter((t): t is NftTable => t !== undefined)
    .map((t) => ({ family: t.family, name: t.name }));
}

/** macOS `netstat -rn -f inet`: Destination, Gateway, Flags, Netif … per line. */
export function parseNetstatRoutes(text: string): HostRoute[] {
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 4 && /^[0-9]/.test(cols[0]) && /^[0-9.]+$/.test(cols[1]))
    .map((cols) => ({ dst: cols[0], gateway: cols[1], dev: cols[3] }));
}

async function output(run: Runner, program: string, args: readonly string[]): Promise<string> {
  const result = await run(program, args);
  if (result.code !== 0) {
    throw new Error(`${program} ${args.join(" ")} failed: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Output of a tool that may not be installed; a missing tool cannot hold leftovers. */
async function optionalOutput(
  run: Runner,
  program: string,
  args: readonly string[],
): Promise<string | undefined> {
  try {
    return await output(run, program, args);
  } catch (err) {
    if (/is not installed or not on PATH|command not found/.test((err as Error).message)) {
      return undefined;
    }
    throw err;
  }
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return "";
    }
    throw err;
  }
}

export interface ReadHostOptions {
  readonly platform?: NodeJS.Platform;
  readonly stateRoot?: string;
  /** macOS: where Homebrew lives; its etc/dnsmasq.conf holds the stacks' blocks. */
  readonly homebrewPrefix?: string;
  readonly run?: Runner;
  /** Reads a world-readable file; "" when it does not exist. */
  readonly readFile?: (file: string) => string;
  /** Whether this process runs as root, so privileged reads need no sudo. */
  readonly isRoot?: boolean;
}

/**
 * A snapshot of everything findLeaks looks at. nft, iptables and the root-owned state root need
 * root, so they are read through `sudo -n` unless this already runs as root.
 */
export async function readHostState(options: ReadHostOptions = {}): Promise<HostState> {
  const platform = options.platform ?? process.platform;
  const run: Runner =
    options.run ?? ((program, args) => runCommand(program, args, { timeoutMs: 30_000 }));
  const asRoot: Runner =
    (options.isRoot ?? process.getuid?.() === 0)
      ? run
      : (program, args) => run("sudo", ["-n", program, ...args]);
  const stateRoot = options.stateRoot ?? "/var/lib/hardway";
  const processes = parsePs(await output(run, "ps", ["-axww", "-o", "pid=,command="]));
  const stateDirsText = await output(asRoot, "sh", [
    "-c",
    'if [ -d "$1" ]; then ls -1A "$1"; fi',
    "list-state-root",
    stateRoot,
  ]);
  const stateDirs = stateDirsText
    .split("\n")
    .filter((name) => name !== "")
    .map((name) => `${stateRoot}/${name}`);
  const read = options.readFile ?? readText;
  const exportsText = read("/etc/exports");
  if (platform === "darwin") {
    const prefix = options.homebrewPrefix ?? "/opt/homebrew";
    return {
      processes,
      links: [],
      routes: parseNetstatRoutes(await output(run, "netstat", ["-rn", "-f", "inet"])),
      nftTables: [],
      iptablesRules: [],
      exportsText,
      sharedDnsmasqConf: read(`${prefix}/etc/dnsmasq.conf`),
      stateDirs,
    };
  }
  const nft = await optionalOutput(asRoot, "nft", ["-j", "list", "tables"]);
  const iptables = await optionalOutput(asRoot, "iptables", ["-S"]);
  return {
    processes,
    links: parseIpLink(await output(run, "ip", ["-j", "-d", "link", "show"])),
    routes: parseIpRoute(await output(run, "ip", ["-j", "route", "show"])),
    nftTables: nft === undefined ? [] : parseNftTables(nft),
    iptablesRules: (iptables ?? "").split("\n").filter((line) => line.includes("hardway")),
    exportsText,
    sharedDnsmasqConf: "",
    stateDirs,
  };
}
