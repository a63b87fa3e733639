/**
 * Where the machine's time went during a phase, logged after it: how many host cores each VM's
 * QEMU kept busy on average, the host's load, and each guest's own view at the phase's end (its
 * load, its available memory, and the share of the last minute its tasks stalled for want of
 * CPU, memory or I/O: the kernel's pressure stall information, /proc/pressure), and the host's
 * own. The same run
 * varies by many minutes here; in CI's log this says which guest was starved, and of what, in a
 * phase that took four times as long as usual.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stackStateDir, vmStateDir } from "../../components/host/layout";

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ; 100 on Linux everywhere). */
const USER_HZ = 100;

/** User plus system CPU time, in clock ticks, of the process a /proc/<pid>/stat line is of. Pure. */
export function cpuTicks(stat: string): number {
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const ticks = Number(rest[11]) + Number(rest[12]);
  if (!Number.isFinite(ticks)) {
    throw new Error(`not a /proc/<pid>/stat line: ${stat.slice(0, 80)}`);
  }
  return ticks;
}

/** Each VM's QEMU at one moment: its pid and CPU ticks so far. */
export type QemuTimes = Readonly<Record<string, { readonly pid: number; readonly ticks: number }>>;

/**
 * How many host cores each VM's QEMU kept busy between two readings `ms` apart: a QEMU started
 * meanwhile (another pid) counts from its start, one gone by the end is left out. Pure.
 */
export function busyCores(before: QemuTimes, after: QemuTimes, ms: number): Record<string, number> {
  const cores: Record<string, number> = {};
  for (const [node, now] of Object.entries(after)) {
    const then = before[node]?.pid === now.pid ? before[node].ticks : 0;
    cores[node] = ms > 0 ? (now.ticks - then) / USER_HZ / (ms / 1000) : 0;
  }
  return cores;
}

/** A shell script any user can run on a guest: its load, memory and pressure, one per line. */
export const GUEST_USAGE_SCRIPT = [
  "cat /proc/loadavg",
  "grep MemAvailable /proc/meminfo",
  'for r in cpu memory io; do echo "$r $(head -n 1 /proc/pressure/$r 2>/dev/null)"; done',
].join("; ");

/** One guest's view of itself: load, available memory, and avg60 stall shares (percent). */
export interface GuestUsage {
  readonly load1: number;
  readonly availableMiB: number;
  readonly stall: Readonly<Record<"cpu" | "memory" | "io", number | undefined>>;
}

/** GUEST_USAGE_SCRIPT's answer, read. Pure. */
export function parseGuestUsage(text: string): GuestUsage {
  const lines = text.split("\n");
  const load1 = Number(lines[0]?.split(" ")[0]);
  const available = /^MemAvailable:\s+(\d+) kB/m.exec(text);
  const stall = (resource: string) => {
    const match = new RegExp(`^${resource} some .*avg60=([0-9.]+)`, "m").exec(text);
    return match === null ? undefined : Number(match[1]);
  };
  if (!Number.isFinite(load1) || available === null) {
    throw new Error(`not a guest's usage: ${text.slice(0, 120)}`);
  }
  return {
    load1,
    availableMiB: Math.round(Number(available[1]) / 1024),
    stall: { cpu: stall("cpu"), memory: stall("memory"), io: stall("io") },
  };
}

/** A machine's load, free memory and stalls, as usageLine prints them. Pure. */
function describeUsage(u: GuestUsage): string {
  const stalls = (["cpu", "memory", "io"] as const)
    .map((r) => `${r} ${u.stall[r] === undefined ? "?" : `${u.stall[r].toFixed(0)}%`}`)
    .join(" ");
  return `load ${u.load1.toFixed(1)}, ${u.availableMiB} MiB free, stalled ${stalls}`;
}

/** The line logged after a phase (see the header). Pure. */
export function usageLine(
  phase: string,
  host: GuestUsage,
  cores: Readonly<Record<string, number>>,
  guests: Readonly<Record<string, GuestUsage | string>>,
): string {
  const vms = Object.entries(cores)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([node, n]) => `${node} ${n.toFixed(2)}`);
  const views = Object.entries(guests)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([node, g]) => `${node}: ${typeof g === "string" ? g : describeUsage(g)}`);
  return [
    `usage during ${phase}: host cores busy per VM: ${vms.join(", ") || "no VM"}`,
    `  at its end (last minute): host: ${describeUsage(host)}${views.map((v) => `; ${v}`).join("")}`,
  ].join("\n");
}

/** Every VM of the stack that has a running QEMU now, with its CPU time (never throws). */
export function readQemuTimes(stack: string, root?: string): QemuTimes {
  const times: Record<string, { pid: number; ticks: number }> = {};
  const vms = path.join(stackStateDir(stack, root), "vms");
  for (const node of fs.existsSync(vms) ? fs.readdirSync(vms) : []) {
    try {
      const pid = Number(
        fs.readFileSync(path.join(vmStateDir(stack, node, root), "qemu.pid"), "utf8"),
      );
      times[node] = { pid, ticks: cpuTicks(fs.readFileSync(`/proc/${pid}/stat`, "utf8")) };
    } catch {
      // No pid file, or its QEMU is gone: not running now.
    }
  }
  return times;
}

/** This machine's own usage, read as GUEST_USAGE_SCRIPT reads a guest's. */
export function hostUsage(): GuestUsage {
  const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");
  return parseGuestUsage(
    [
      read("/proc/loadavg").trim(),
      read("/proc/meminfo"),
      ...["cpu", "memory", "io"].map((r) => `${r} ${read(`/proc/pressure/${r}`).split("\n")[0]}`),
    ].join("\n"),
  );
}

/** What `metered` asks guests through: the run's cluster, once it has outputs. */
interface Guests {
  readonly outputs?: { readonly nodes: Readonly<Record<string, unknown>> };
  ssh(node: string, command: string, timeoutMs?: number): Promise<string>;
}

/** How long one guest may take to answer GUEST_USAGE_SCRIPT before it is reported as silent. */
const GUEST_ANSWER_MS = 60_000;

/**
 * `body`, then the usage line of its phase logged (usageLine). Never fails the phase: a guest
 * that does not answer within a minute is named as such.
 */
export function metered<T>(
  phase: string,
  stack: string,
  cluster: Guests,
  log: (line: string) => void,
  body: () => Promise<T>,
  answerMs = GUEST_ANSWER_MS,
): () => Promise<T> {
  return async () => {
    const before = readQemuTimes(stack);
    const started = Date.now();
    try {
      return await body();
    } finally {
      const cores = busyCores(before, readQemuTimes(stack), Date.now() - started);
      const guests: Record<string, GuestUsage | string> = {};
      await Promise.all(
        Object.keys(cluster.outputs?.nodes ?? {}).map(async (node) => {
          let timer: NodeJS.Timeout | undefined;
          const silent = new Promise<string>((resolve) => {
            timer = setTimeout(() => resolve(`no answer in ${answerMs / 1000} s`), answerMs);
          });
          try {
            const answer = await Promise.race([
              cluster.ssh(node, GUEST_USAGE_SCRIPT, answerMs),
              silent,
            ]);
            guests[node] = answer.startsWith("no answer") ? answer : parseGuestUsage(answer);
          } catch (err) {
            guests[node] = `not asked (${(err as Error).message.split("\n")[0].slice(0, 100)})`;
          } finally {
            clearTimeout(timer);
          }
        }),
      );
      log(usageLine(phase, hostUsage(), cores, guests));
    }
  };
}
