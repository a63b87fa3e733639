/**
 * What each node's daemons went through, printed when a phase fails: a failure seen from the
 * host ("the VIP did not answer") then says what happened on the node itself (a daemon that
 * restarted again and again, and why it exited; the kernel killing it for memory; the load).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { vmStateDir } from "../../components/host/layout";
import { Cluster } from "./cluster";

/** The units node steps install, in start order; a node has only some of them. */
export const NODE_UNITS = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "containerd",
  "kubelet",
  "kube-proxy",
] as const;

/**
 * A bash script, run as root on a node, that prints its load and memory, the state and restart
 * count of each installed unit, the starts, stops and errors of etcd and the API server since
 * boot (with seconds since boot), and the kernel's out-of-memory kills. It never fails.
 */
export function nodeStateScript(units: readonly string[] = NODE_UNITS): string {
  return [
    "set +e",
    'echo "uptime:$(uptime)"',
    "free -m | sed -n 1,2p",
    `for unit in ${units.join(" ")}; do`,
    '  [[ "$(systemctl show -p LoadState --value "$unit.service")" == loaded ]] || continue',
    '  echo "$unit: $(systemctl show -p ActiveState,SubState,NRestarts,ExecMainStatus,ExecMainStartTimestampMonotonic "$unit.service" | paste -sd " ")"',
    "done",
    "journalctl -b --no-pager -o short-monotonic -u etcd -u kube-apiserver 2>/dev/null |",
    '  grep -E \'etcd-join|Started|Stopped|Failed|Main process|timed out|Scheduled restart|[FE][0-9]{4} |"level":"(error|fatal|panic)"\' |',
    "  tail -n 40",
    "journalctl -k -b --no-pager 2>/dev/null | grep -iE 'out of memory|oom-kill|killed process' | tail -n 10",
    "ps -eo rss,pcpu,etimes,comm --sort=-rss | head -n 10",
    "true",
  ].join("\n");
}

/** Kernel complaints worth reading first in a guest's console: the network, memory, hangs. */
const KERNEL_TROUBLE =
  /NETDEV WATCHDOG|transmit queue|Out of memory|oom-kill|BUG:|hung_task|blocked for more than|rcu.*stall|soft lockup|Kernel panic/i;

/**
 * What a node's serial console says when it cannot be asked over SSH: its kernel's complaints
 * (the last `troubles`) and the last `lines` lines, carriage returns and terminal escapes taken
 * out. Pure.
 */
export function consoleTail(text: string, lines = 30, troubles = 10): string {
  const clean = text
    // eslint-disable-next-line no-control-regex
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
    .split(/\r?\n|\r/)
    .filter((line) => line.trim() !== "");
  const complaints = clean.filter((line) => KERNEL_TROUBLE.test(line)).slice(-troubles);
  return [
    `kernel complaints: ${complaints.length === 0 ? "none" : ""}`,
    ...complaints.map((line) => `  ${line}`),
    `last ${Math.min(lines, clean.length)} console lines:`,
    ...clean.slice(-lines).map((line) => `  ${line}`),
  ].join("\n");
}

/**
 * Logs nodeStateScript's answer from every node that runs a kubelet; for a node SSH cannot
 * reach, its serial console's tail instead (consoleTail). Never throws.
 */
export async function logNodeStates(
  cluster: Cluster,
  stack: string,
  log: (line: string) => void,
): Promise<void> {
  if (cluster.outputs === undefined) {
    return;
  }
  const script = Buffer.from(nodeStateScript()).toString("base64");
  for (const node of cluster.kubeletNodes()) {
    try {
      const state = await cluster.ssh(node, `echo ${script} | base64 -d | sudo bash`, 300_000);
      log(`state of ${node}:\n${state.trimEnd()}`);
    } catch (err) {
      log(`state of ${node}: could not ask (${(err as Error).message.trim()})`);
      const serial = path.join(vmStateDir(stack, node), "serial.log");
      if (fs.existsSync(serial)) {
        log(`console of ${node} (${serial}):\n${consoleTail(fs.readFileSync(serial, "utf8"))}`);
      }
    }
  }
}
