/**
 * The e2e phases that change a live cluster's shape: one more worker (`hardway:workers` n → n+1),
 * then back (n+1 → n). Adding must show in the preview as the new node's resources and the host's
 * dnsmasq config only, restart no daemon on the nodes that were there (each unit's MainPID before
 * and after) and keep their pods (the echo pod's UID). Removing must drain the node through the
 * API first (a two-replica Deployment spread over both workers, under a PodDisruptionBudget, ends
 * with both replicas Running on the remaining nodes), delete its Node object, and leave nothing of
 * it on the host: no VM process, tap, pod route, VM directory, lease or DNS name.
 */
import * as fs from "node:fs";
import { stringify } from "yaml";
import { DNSMASQ_FILES } from "../../components/host/dnsmasq";
import { stackStateDir, vmStateDir } from "../../components/host/layout";
import { tapName } from "../../components/vm/qemu";
import { EngineStack, parsePreview } from "../engine/engine";
import { Cluster, POLLING, log, podOf } from "./cluster";
import { ECHO_IMAGE } from "./ociArchives";
import { HostState, readHostState } from "./leaks";
import { waitFor } from "../smoke/checks";

/** The units whose main process must survive a change of another node. */
export const WATCHED_UNITS = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "containerd",
  "crio",
  "kubelet",
  "kube-proxy",
  "ldirectord",
] as const;

/** Prints `<unit> <MainPID>` for every watched unit that runs. */
export function mainPidScript(): string {
  return `for unit in ${WATCHED_UNITS.join(" ")}; do pid="$(systemctl show -p MainPID --value "$unit.service" 2>/dev/null)"; if [ -n "$pid" ] && [ "$pid" != 0 ]; then echo "$unit $pid"; fi; done`;
}

/** `<unit> <pid>` lines → unit → pid. Pure. */
export function parseMainPids(text: string): Record<string, number> {
  const pids: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^(\S+) (\d+)$/.exec(line.trim());
    if (match) {
      pids[match[1]] = Number(match[2]);
    }
  }
  return pids;
}

/** Node → unit → MainPID. */
export type MainPids = Record<string, Record<string, number>>;

/** The units whose main process changed or went, as `node/unit pid → pid`. Pure. */
export function restartedUnits(before: MainPids, after: MainPids): string[] {
  const restarted: string[] = [];
  for (const [node, units] of Object.entries(before)) {
    for (const [unit, pid] of Object.entries(units)) {
      const now = after[node]?.[unit];
      if (now !== pid) {
        restarted.push(`${node}/${unit} ${pid} → ${now ?? "gone"}`);
      }
    }
  }
  return restarted;
}

/** The name a Pulumi URN ends with. */
const resourceName = (urn: string) => urn.split("::").pop() ?? urn;

/**
 * What a preview of adding or removing `node` plans that it should not: the node's own
 * resources may only be created (adding) or deleted (removing); of everything else only the
 * host network may change (its dnsmasq config lists every node). Pure.
 */
export function unexpectedSteps(
  steps: readonly { readonly op: string; readonly urn: string }[],
  node: string,
  change: "add" | "remove",
): string[] {
  const own = change === "add" ? "create" : "delete";
  return steps
    .filter((s) => s.op !== "same")
    .filter((s) => {
      const name = resourceName(s.urn);
      if (name.includes(node)) {
        return s.op !== own;
      }
      // dnsmasq's leases and names on the host; and the API health probe, which plans a wait
      // (not a change) whenever the loaded API missed its three status requests.
      return !(s.op === "update" && (name === "host-linux" || name === "k8s-api-health"));
    })
    .map((s) => `${s.op} ${resourceName(s.urn)}`);
}

/** The counts of a preview's planned operations, e.g. "13 create, 1 update". Pure. */
export function stepCounts(steps: readonly { readonly op: string }[]): string {
  const counts = new Map<string, number>();
  for (const step of steps.filter((s) => s.op !== "same")) {
    counts.set(step.op, (counts.get(step.op) ?? 0) + 1);
  }
  return [...counts].map(([op, n]) => `${n} ${op}`).join(", ");
}

/**
 * What the host still holds of a removed node: its VM process, tap, pod route, VM directory,
 * and its lease and DNS name in the dnsmasq config. Pure.
 */
export function nodeLeftovers(
  state: HostState,
  dnsmasqConf: string,
  vmDirExists: boolean,
  target: { readonly stack: string; readonly node: string; readonly ip: string },
): string[] {
  const left: string[] = [];
  const vmDir = vmStateDir(target.stack, target.node);
  for (const process of state.processes) {
    if (process.command.split(/[\s=,]/).some((word) => word.startsWith(`${vmDir}/`))) {
      left.push(`VM process ${process.pid}`);
    }
  }
  const tap = tapName(target.stack, target.node);
  if (state.links.some((l) => l.ifname === tap)) {
    left.push(`tap ${tap}`);
  }
  for (const route of state.routes.filter((r) => r.gateway === target.ip)) {
    left.push(`route ${route.dst} via ${route.gateway}`);
  }
  if (vmDirExists) {
    left.push(`VM directory ${vmDir}`);
  }
  for (const line of dnsmasqConf.split("\n")) {
    if (line.split(/[=,]/).includes(target.node)) {
      left.push(`dnsmasq: ${line}`);
    }
  }
  return left;
}

/**
 * Two replicas kept on two different workers while both exist (topology spread), allowed on any
 * of the named workers, under a PodDisruptionBudget that keeps one available: a drain evicts one
 * replica at a time, each only while the other runs.
 */
export function spreadWorkload(name: string, workers: readonly string[]) {
  const labels = { app: name };
  return [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    {
                      matchExpressions: [
                        { key: "kubernetes.io/hostname", operator: "In", values: [...workers] },
                      ],
                    },
                  ],
                },
              },
            },
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "DoNotSchedule",
                // A cordoned (leaving) node is no place to spread to.
                nodeTaintsPolicy: "Honor",
                labelSelector: { matchLabels: labels },
              },
            ],
            terminationGracePeriodSeconds: 2,
            containers: [{ name, image: ECHO_IMAGE, imagePullPolicy: "Never" }],
          },
        },
      },
    },
    {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name },
      spec: { minAvailable: 1, selector: { matchLabels: labels } },
    },
  ];
}

const SPREAD = "spread";

/** The nodes the Running, not terminating, pods of `app` are on, sorted. */
async function runningOn(cluster: Cluster, app: string): Promise<string[]> {
  const pods = JSON.parse(
    await cluster.kubectl(["get", "pods", "-l", `app=${app}`, "-o", "json"]),
  ) as {
    items: {
      metadata: { deletionTimestamp?: string };
      spec: { nodeName?: string };
      status: { phase?: string; conditions?: { type: string; status: string }[] };
    }[];
  };
  return pods.items
    .filter(
      (p) =>
        p.metadata.deletionTimestamp === undefined &&
        p.status.phase === "Running" &&
        p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    )
    .map((p) => p.spec.nodeName ?? "")
    .sort();
}

/** Each VM's watched units and their main processes. */
async function mainPids(cluster: Cluster, nodes: readonly string[]): Promise<MainPids> {
  const pids: MainPids = {};
  for (const node of nodes) {
    pids[node] = parseMainPids(await cluster.ssh(node, mainPidScript()));
  }
  return pids;
}

export interface ScaleRun {
  readonly cluster: Cluster;
  readonly stack: EngineStack;
  /** `pulumi up --yes`, its seconds; throws when it fails. */
  readonly up: () => { seconds: number };
}

/** What the add phase hands the remove phase. */
export interface Added {
  readonly node: string;
  readonly ip: string;
  readonly echoUid: string;
  /** The nodes that were there before, and their daemons' MainPIDs. */
  readonly pids: MainPids;
}

function setWorkers(stack: EngineStack, count: number): void {
  stack.must([
    "config",
    "set",
    "--config-file",
    stack.configFile,
    "hardway:workers",
    String(count),
  ]);
}

function previewOf(run: ScaleRun, node: string, change: "add" | "remove"): string {
  const preview = run.stack.must(["preview", "--json"], { timeoutMs: 1_800_000 });
  const steps = parsePreview(preview.stdout).steps;
  const unexpected = unexpectedSteps(steps, node, change);
  if (unexpected.length > 0) {
    throw new Error(
      `the preview plans more than ${node}'s own resources: ${unexpected.join(", ")}`,
    );
  }
  const summary = `preview ${preview.seconds.toFixed(0)} s: ${stepCounts(steps)}`;
  log(`${change} ${node}: ${summary}`);
  return summary;
}

/** workers n → n+1. */
export async function addWorker(
  run: ScaleRun,
  workers: number,
): Promise<{ ok: boolean; detail: string; added: Added }> {
  const { cluster } = run;
  cluster.refreshOutputs();
  const node = `worker${workers}`;
  const before = Object.keys(cluster.outputs.nodes).sort();
  const pids = await mainPids(cluster, before);
  const echo = await podOf(cluster, "echo");
  if (echo === undefined) {
    throw new Error("no Running echo pod before the change");
  }
  setWorkers(run.stack, workers + 1);
  const planned = previewOf(run, node, "add");
  const up = run.up();
  cluster.refreshOutputs();
  const ip = cluster.outputs.nodes[node]?.ip;
  if (ip === undefined) {
    throw new Error(`the stack's nodes output has no ${node} after the up`);
  }
  // The up ends once the kubelet runs; it registers its Node a little later, and kubectl wait
  // fails at once on an object that does not exist yet.
  await cluster.kubectl(
    ["wait", "--for=create", `node/${node}`, "--timeout=600s"],
    undefined,
    660_000,
  );
  await cluster.kubectl(
    ["wait", "--for=condition=Ready", `node/${node}`, "--timeout=600s"],
    undefined,
    660_000,
  );
  const echoAfter = await podOf(cluster, "echo");
  const restarted = restartedUnits(pids, await mainPids(cluster, before));
  const problems = [
    ...(echoAfter?.uid === echo.uid
      ? []
      : [`the echo pod ${echo.uid} was replaced by ${echoAfter?.uid ?? "nothing"}`]),
    ...restarted.map((r) => `restarted: ${r}`),
  ];
  const watched = Object.values(pids).reduce((n, units) => n + Object.keys(units).length, 0);
  return {
    ok: problems.length === 0,
    detail: `${planned}; up ${up.seconds.toFixed(0)} s; ${node} Ready; ${
      problems.length === 0
        ? `echo pod kept (uid ${echo.uid}); ${watched} daemons on ${before.join(", ")} kept their MainPID`
        : problems.join("; ")
    }`,
    added: { node, ip, echoUid: echo.uid, pids },
  };
}

/** workers n+1 → n, after addWorker. */
export async function removeWorker(
  run: ScaleRun,
  workers: number,
  added: Added,
): Promise<{ ok: boolean; detail: string }> {
  const { cluster, stack } = run;
  const remaining = cluster.kubeletNodes().filter((n) => n !== added.node);
  const spreadOver = [...remaining.filter((n) => n.startsWith("worker")), added.node];
  const objects = spreadWorkload(SPREAD, spreadOver);
  await cluster.kubectl(["apply", "-f", "-"], objects.map((o) => stringify(o)).join("---\n"));
  try {
    await cluster.kubectl(
      ["rollout", "status", `deployment/${SPREAD}`, "--timeout=600s"],
      undefined,
      660_000,
    );
    const spreadBefore = await runningOn(cluster, SPREAD);
    if (!spreadBefore.includes(added.node)) {
      throw new Error(
        `the spread replicas run on ${spreadBefore.join(", ")}, none on ${added.node}`,
      );
    }
    setWorkers(stack, workers);
    const planned = previewOf(run, added.node, "remove");
    const up = run.up();
    cluster.refreshOutputs();
    const spreadAfter = await waitFor(
      POLLING,
      `both ${SPREAD} replicas Running on ${remaining.join(", ")}`,
      600_000,
      async () => {
        const on = await runningOn(cluster, SPREAD);
        return on.length === 2 && on.every((n) => remaining.includes(n))
          ? { done: true, value: on }
          : { done: false, state: `running on [${on.join(", ")}]` };
      },
    );
    const problems: string[] = [];
    const nodes = (await cluster.kubectl(["get", "nodes", "-o", "name"])).trim().split("\n");
    if (nodes.includes(`node/${added.node}`)) {
      problems.push(`the Node object ${added.node} is still there`);
    }
    const stateDir = stackStateDir(stack.name);
    const dnsmasqConf = fs.readFileSync(`${stateDir}/${DNSMASQ_FILES.config}`, "utf8");
    const leftovers = nodeLeftovers(
      await readHostState(),
      dnsmasqConf,
      fs.existsSync(vmStateDir(stack.name, added.node)),
      { stack: stack.name, node: added.node, ip: added.ip },
    );
    problems.push(...leftovers.map((l) => `left on the host: ${l}`));
    const echo = await podOf(cluster, "echo");
    if (echo?.uid !== added.echoUid) {
      problems.push(`the echo pod ${added.echoUid} was replaced by ${echo?.uid ?? "nothing"}`);
    }
    const restarted = restartedUnits(added.pids, await mainPids(cluster, Object.keys(added.pids)));
    problems.push(...restarted.map((r) => `restarted: ${r}`));
    return {
      ok: problems.length === 0,
      detail: `${planned}; up ${up.seconds.toFixed(0)} s; ${SPREAD} replicas on [${spreadBefore.join(
        ", ",
      )}] → [${spreadAfter.join(", ")}]; ${
        problems.length === 0
          ? `Node ${added.node}, its VM, tap, route, lease and DNS name gone; echo pod and every daemon's MainPID kept`
          : problems.join("; ")
      }`,
    };
  } finally {
    // The later phases drain the remaining worker: a budget with nowhere to go would stop them.
    await cluster.kubectl(
      ["delete", "-f", "-", "--ignore-not-found", "--wait=false"],
      objects.map((o) => stringify(o)).join("---\n"),
    );
  }
}
