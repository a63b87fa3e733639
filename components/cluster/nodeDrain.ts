/**
 * NodeDrain: moves the pods off a node before an upgrade that may not keep them running, and
 * lets them back afterwards. Upstream upgrades a kubelet in place only within a minor; across
 * minors (or to another container runtime) the node is drained first. Each kubelet node gets two
 * of these around its steps (runtime, kubelet, kube-proxy): a `drain` before, an `uncordon`
 * after. kubectl runs on the first control node with its admin.conf. Their life cycle:
 *
 *   create   nothing: a new node has no pods to move.
 *   update   only when `disruption` changed (the Kubernetes minor, the runtime): `drain` cordons
 *            the node and evicts its pods through the eviction API (DaemonSet pods stay), waiting
 *            while a PodDisruptionBudget refuses; past its timeout it fails, naming the pods that
 *            are still there, and deletes nothing. `uncordon` waits until the node is Ready
 *            again, then makes it schedulable. Any other change (a new host key) only records.
 *   delete   the node leaves the cluster (fewer workers, or a step back to the control plane):
 *            the `uncordon` goes first, before the node's steps, and drains it as above; a node
 *            that is not Ready is only cordoned (its pods cannot stop gracefully; they go with
 *            its Node object). The `drain` goes after the node's kubelet and kube-proxy steps
 *            are removed (a running kubelet would register its Node again) and deletes the Node
 *            object. Nothing runs when the cluster goes too (`destroy`: KubernetesCluster
 *            passes `deletedWith` the cluster's data), or when the control node is unreachable.
 *
 * A failed `up` leaves the node cordoned; the next `up` finishes the steps and then uncordons.
 */
import * as pulumi from "@pulumi/pulumi";
import { NODE_PATHS } from "../kubernetes/paths";
import { NodeAddress } from "../network/addressPlan";
import { ClusterNodes } from "./nodeStep";
import { shellCommand } from "./shell";
import { SshTarget, withSsh } from "./ssh";

export type DrainVerb = "drain" | "uncordon";

export interface NodeDrainState {
  readonly verb: DrainVerb;
  /** The node drained (its Node object's name). */
  readonly node: string;
  /** What, when it changes, makes the node's update disruptive. */
  readonly disruption: Readonly<Record<string, string>>;
  /** Where kubectl runs: a control node with admin.conf. */
  readonly via: SshTarget;
  readonly kubeconfig: string;
  readonly timeoutSeconds: number;
}

type KubectlState = Pick<NodeDrainState, "verb" | "node" | "kubeconfig" | "timeoutSeconds">;

/** kubectl as root with the control node's admin.conf, these arguments after it. */
function kubectl(state: KubectlState, ...args: string[]): string {
  return shellCommand(["sudo", "kubectl", "--kubeconfig", state.kubeconfig, ...args]);
}

/** The node's pods evicted (DaemonSet pods stay, emptyDir data goes, nothing forced). */
function drainNode(state: KubectlState): string {
  return kubectl(
    state,
    "drain",
    state.node,
    "--ignore-daemonsets",
    "--delete-emptydir-data",
    `--timeout=${state.timeoutSeconds}s`,
  );
}

const registered = (state: KubectlState) =>
  `${kubectl(state, "get", "node", state.node)} >/dev/null 2>&1`;
const notRegistered = (state: KubectlState) =>
  `echo "node ${state.node} is not registered: nothing to drain"`;

/** The kubectl command lines each verb runs on the control node; no secrets. Pure. */
export function drainCommands(state: KubectlState): string[] {
  if (state.verb === "drain") {
    return [`if ${registered(state)}; then ${drainNode(state)}; else ${notRegistered(state)}; fi`];
  }
  return [
    kubectl(
      state,
      "wait",
      "--for=condition=Ready",
      `node/${state.node}`,
      `--timeout=${state.timeoutSeconds}s`,
    ),
    kubectl(state, "uncordon", state.node),
  ];
}

/**
 * The kubectl command lines that take a leaving node out of the cluster, run when the NodeDrain
 * is deleted: `uncordon` (deleted first) drains a Ready node and only cordons one that is not
 * (its kubelet cannot stop its pods, so a drain would wait for nothing); `drain` (deleted once
 * the node's kubelet is gone) deletes the Node object, and with it the pods still bound to it.
 * No secrets. Pure.
 */
export function leaveCommands(state: KubectlState): string[] {
  if (state.verb === "drain") {
    return [
      kubectl(
        state,
        "delete",
        "node",
        state.node,
        "--ignore-not-found",
        `--timeout=${state.timeoutSeconds}s`,
      ),
    ];
  }
  const ready = kubectl(
    state,
    "get",
    "node",
    state.node,
    "-o",
    'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
  );
  return [
    `if ! ${registered(state)}; then ${notRegistered(state)}; ` +
      `elif [ "$(${ready} 2>/dev/null)" = True ]; then ${drainNode(state)}; ` +
      `else ${kubectl(state, "cordon", state.node)} && echo "node ${state.node} is not Ready: cordoned only; its pods go with its Node object"; fi`,
  ];
}

/**
 * The last reason kubectl gave for each pod it could not evict, keyed `namespace/name`: a retried
 * refusal (HTTP 429: a PodDisruptionBudget, or the API server shedding load) rather than the
 * final "global timeout reached" when both are there. Pure.
 */
export function evictionRefusals(output: string): Map<string, string> {
  const reasons = new Map<string, string>();
  // kubectl lists several pods' errors on one line, in brackets and separated by commas.
  const pattern =
    /error when evicting pods\/"([^"]+)" -n "([^"]+)"(?: \(will retry after [^)]*\))?: ((?:(?!, error when evicting)[^\n\]])+)/g;
  for (const match of output.matchAll(pattern)) {
    const pod = `${match[2]}/${match[1]}`;
    const reason = match[3].replace(/, continuing command\.\.\.$/, "").trim();
    if (!reason.startsWith("global timeout reached") || !reasons.has(pod)) {
      reasons.set(pod, reason);
    }
  }
  return reasons;
}

/**
 * What a failed drain could not move, from kubectl's output: each pod whose eviction the API
 * refused, with the API's own reason (a PodDisruptionBudget allowing no disruption is the usual
 * one), and pods no controller would re-create (kubectl deletes those only with --force, which
 * would lose them). Pure.
 */
export function drainFailure(node: string, output: string): string {
  const refused = evictionRefusals(output);
  const uncontrolled = /cannot delete Pods that declare no controller[^:]*: ([^\n]+)/.exec(output);
  const parts: string[] = [];
  if (refused.size > 0) {
    const pods = [...refused.keys()].sort().map((pod) => `${pod} (${refused.get(pod)})`);
    const budget = [...refused.values()].some((r) => /disruption budget/i.test(r));
    parts.push(
      `the eviction of ${pods.join(", ")} did not go through; ${
        budget
          ? "where a PodDisruptionBudget allows no disruption now, make room for its pods elsewhere or relax it"
          : "the API said why"
      }, then run pulumi up again`,
    );
  }
  if (uncontrolled) {
    const pods = uncontrolled[1].replace(/, continuing command\.\.\.$/, "").trim();
    parts.push(
      `${pods} belong to no controller, so nothing would re-create them elsewhere; delete them or run them from a Deployment, then run pulumi up again`,
    );
  }
  return parts.length > 0
    ? `cannot drain ${node}: ${parts.join("; ")}`
    : `cannot drain ${node}: ${output.trim().split("\n").slice(-10).join("\n")}`;
}

/** Whether an update must act: the disruption changed. Pure. */
export function disruptionChanged(olds: NodeDrainState, news: NodeDrainState): boolean {
  return JSON.stringify(olds.disruption) !== JSON.stringify(news.disruption);
}

const lastLines = (output: string) => output.trim().split("\n").slice(-10).join("\n");

/**
 * What kubectl (or the API server behind it) says when a request did not finish or was not
 * answered, rather than refused: the API server's own deadline for a write (34 s, whatever
 * `--request-timeout` says: k8s.io/apiserver handlers' requestTimeoutUpperBound), an overloaded
 * or restarting server, etcd losing its leader. kubectl drain gives up on the first such answer
 * to an eviction (it waits and asks again only on 429), although asking again is all it takes.
 */
const TRANSIENT_API_FAILURES = [
  /Timeout: request did not complete within requested timeout/,
  /the server was unable to return a response in the time allotted/,
  /the server is currently unable to handle the request/,
  /etcdserver: (request timed out|leader changed|no leader)/,
  /net\/http: TLS handshake timeout/,
  /Unable to connect to the server/,
  /connect: connection refused/,
  /connection reset by peer/,
];

/** The first line of kubectl's output that says the API did not finish, or undefined. Pure. */
export function transientApiFailure(output: string): string | undefined {
  return output
    .split("\n")
    .find((line) => TRANSIENT_API_FAILURES.some((pattern) => pattern.test(line)))
    ?.trim();
}

/** Seconds between a command that met a transient failure and the next try of it. */
export const RETRY_DELAY_SECONDS = 10;

/** One run of a command line: its exit code (null: killed at its timeout) and what it printed. */
export interface CommandResult {
  readonly code: number | null;
  readonly output: string;
}

/**
 * Runs one command line until it succeeds; throws `failure(output)` on a failure that is not
 * transient (transientApiFailure), or once `timeoutSeconds` from the first try would pass before
 * the next. Between tries it says why and waits `delaySeconds`. `sleep` and `now` are there for
 * tests.
 */
export async function runUntilDone(
  run: () => Promise<CommandResult>,
  options: {
    readonly timeoutSeconds: number;
    readonly delaySeconds: number;
    readonly failure: (output: string) => string;
    readonly say: (line: string) => void;
    readonly sleep?: (seconds: number) => Promise<void>;
    readonly now?: () => number;
  },
): Promise<void> {
  const now = options.now ?? Date.now;
  const sleep =
    options.sleep ?? ((seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000)));
  const started = now();
  for (let attempt = 1; ; attempt++) {
    const result = await run();
    if (result.code === 0) {
      return;
    }
    const transient = transientApiFailure(result.output);
    const elapsed = Math.round((now() - started) / 1000);
    if (transient === undefined || elapsed + options.delaySeconds >= options.timeoutSeconds) {
      const tries = attempt > 1 ? ` (tried ${attempt} times in ${elapsed} s)` : "";
      throw new Error(`${options.failure(result.output)}${tries}`);
    }
    options.say(`the API did not finish (${transient}); asking again in ${options.delaySeconds} s`);
    await sleep(options.delaySeconds);
  }
}

/**
 * Runs the command lines on the control node in turn; the first that fails throws `failure`.
 * Every line is safe to run again (drain, uncordon, cordon, wait, delete --ignore-not-found), so
 * one that met a transient failure of the API is run again (runUntilDone).
 */
async function runOnControlNode(
  state: NodeDrainState,
  commands: readonly string[],
  failure: (output: string) => string,
): Promise<void> {
  await withSsh(state.via, async (session) => {
    for (const command of commands) {
      await runUntilDone(
        async () => {
          const result = await session.run(command, undefined, state.timeoutSeconds + 60);
          return { code: result.code, output: `${result.stdout}\n${result.stderr}` };
        },
        {
          timeoutSeconds: state.timeoutSeconds,
          delaySeconds: RETRY_DELAY_SECONDS,
          failure,
          say: (line) => console.error(`${state.verb} of ${state.node}: ${line}`),
        },
      );
    }
  });
}

export const nodeDrainProvider: pulumi.dynamic.ResourceProvider<NodeDrainState, NodeDrainState> = {
  create(inputs) {
    return Promise.resolve({ id: `${inputs.verb}@${inputs.node}`, outs: inputs });
  },

  diff(_id, olds, news) {
    return Promise.resolve({
      changes: JSON.stringify(olds) !== JSON.stringify(news),
      replaces: olds.verb !== news.verb || olds.node !== news.node ? ["verb"] : [],
      deleteBeforeReplace: true,
    });
  },

  async update(_id, olds, news) {
    if (disruptionChanged(olds, news)) {
      await runOnControlNode(news, drainCommands(news), (output) =>
        news.verb === "drain"
          ? drainFailure(news.node, output)
          : `cannot uncordon ${news.node}: ${lastLines(output)}`,
      );
    }
    return { outs: news };
  },

  async delete(_id, olds) {
    try {
      await runOnControlNode(olds, leaveCommands(olds), (output) =>
        olds.verb === "uncordon"
          ? drainFailure(olds.node, output)
          : `cannot delete node ${olds.node}: ${lastLines(output)}`,
      );
    } catch (err) {
      if ((err as { unreachable?: boolean }).unreachable) {
        // The control node is gone: so is the API that would know the node.
        console.error(`${olds.verb} of ${olds.node}: control node unreachable, nothing to do`);
        return;
      }
      throw err;
    }
  },
};

export interface NodeDrainArgs {
  readonly verb: DrainVerb;
  readonly node: NodeAddress;
  /** What, when it changes, makes the node's update disruptive (e.g. the Kubernetes minor). */
  readonly disruption: Readonly<Record<string, string>>;
  /** The cluster's VMs: kubectl runs on `via`. */
  readonly nodes: ClusterNodes;
  readonly via: NodeAddress;
  /**
   * Seconds the drain waits for evictions, and the uncordon for the node to be Ready.
   * @default 600
   */
  readonly timeoutSeconds?: number;
}

export class NodeDrain extends pulumi.dynamic.Resource {
  constructor(name: string, args: NodeDrainArgs, opts?: pulumi.CustomResourceOptions) {
    const host = args.nodes.hosts[args.via.name];
    if (host === undefined) {
      throw new Error(`no VM is known for ${args.via.name}, where kubectl runs to drain nodes`);
    }
    const inputs: { [K in keyof NodeDrainState]: pulumi.Input<NodeDrainState[K]> } = {
      verb: args.verb,
      node: args.node.name,
      disruption: args.disruption,
      via: pulumi.secret(
        pulumi
          .all([args.nodes.connection.privateKey, host.hostKey])
          .apply(([privateKey, hostKey]) => ({
            host: args.via.ip,
            user: args.nodes.connection.user,
            privateKey,
            hostKey: hostKey.trim(),
          })),
      ),
      kubeconfig: NODE_PATHS.kubeconfigs.admin,
      timeoutSeconds: args.timeoutSeconds ?? 600,
    };
    super(
      nodeDrainProvider,
      name,
      inputs,
      { ...opts, additionalSecretOutputs: ["via"] },
      "cluster",
      "NodeDrain",
    );
  }
}
