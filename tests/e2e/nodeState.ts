/**
 * What each node's daemons went through, printed when a phase fails: a failure seen from the
 * host ("the VIP did not answer") then says what happened on the node itself (a daemon that
 * restarted again and again, and why it exited; the kernel killing it for memory; the load).
 */
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

/** Logs nodeStateScript's answer from every node that runs a kubelet; never throws. */
export async function logNodeStates(cluster: Cluster, log: (line: string) => void): Promise<void> {
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
    }
  }
}
