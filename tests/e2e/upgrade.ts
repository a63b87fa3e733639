/**
 * The e2e run's minor upgrade: the cluster was installed one minor below the pins (UPGRADE_FROM)
 * and `up` moves it to them (Kubernetes, etcd and crictl a minor up, runc a patch), every leaf
 * certificate re-issued too. While it runs, the versions every daemon runs are sampled, so the
 * run can show that no kubelet, kube-proxy, controller manager or scheduler ran the new minor
 * while an API server still ran the old one (the version-skew policy), and that each node was
 * cordoned before its kubelet changed. Afterwards: etcd's key and the workloads survived, every
 * member runs the new etcd, a second `up` changes nothing, and going back a minor is refused.
 */
import * as crypto from "node:crypto";
import { defaultVersions } from "../../components/config/defaults";
import { minorOf } from "../../components/config/kubernetesSupport";
import { EngineStack, lastChanges, parsePreview } from "../engine/engine";
import { Cluster, log, podOf } from "./cluster";
import { UPGRADE_FROM } from "./mirror";
import { StepSpan } from "./phases";
import { RUN_VERSIONS } from "./serviceArtifacts";

/** The pins, with the run's own MetalLB (serviceArtifacts.ts): what the upgrade goes to. */
const PINS = JSON.stringify(RUN_VERSIONS);

/** The daemons whose running version is sampled on each node that has them. */
export const SAMPLED_UNITS = [
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubelet",
  "kube-proxy",
] as const;

/** What one look at the cluster saw. */
export interface VersionSample {
  /** Seconds since the `up` started. */
  readonly at: number;
  /** `<node>/<unit>` → the version its running process reports, e.g. "1.37.2". */
  readonly running: Readonly<Record<string, string>>;
  /** Node → whether it is cordoned; absent when the API did not answer. */
  readonly unschedulable: Readonly<Record<string, boolean>>;
}

/**
 * The shell line that prints, for each sampled unit running on a node, `<unit>|<its running
 * binary>|<node-step.sh's record of where that binary came from>`. Cheap on a loaded emulated
 * guest (asking each daemon's binary for --version was not: five Go programs started every few
 * seconds took the guest's CPU from the upgrade itself). A step renames the new binary over the
 * old one and then restarts the daemon, so a daemon still on the old one runs a "(deleted)" file.
 */
export function sampleCommand(): string {
  return [
    `for u in ${SAMPLED_UNITS.join(" ")}; do`,
    'pid=$(systemctl show -p MainPID --value "$u.service" 2>/dev/null || echo 0);',
    '[ -n "$pid" ] && [ "$pid" != 0 ] || continue;',
    'exe=$(sudo readlink "/proc/$pid/exe" 2>/dev/null) || continue;',
    'echo "$u|$exe|$(grep -h "|$exe$" /var/lib/hardway/binaries/*.sources 2>/dev/null | head -n 1)";',
    "done",
  ].join(" ");
}

/**
 * unit → the version it runs, from sampleCommand's lines: the version directory of the release
 * file its binary came from (…/artifacts/<name>/<version>/<arch>/…), or `replaced` (the version
 * before) when the binary on disk is newer than the running one. Pure.
 */
export function parseRunning(output: string, replaced: string): Record<string, string> {
  const running: Record<string, string> = {};
  for (const line of output.split("\n")) {
    const [unit, exe, ...source] = line.trim().split("|");
    if (!unit || !exe) {
      continue;
    }
    if (exe.endsWith(" (deleted)")) {
      running[unit] = replaced;
      continue;
    }
    const version = /\/artifacts\/[^/]+\/(\d+\.\d+\.\d+)\//.exec(source.join("|"))?.[1];
    if (version !== undefined) {
      running[unit] = version;
    }
  }
  return running;
}

/**
 * Every moment a daemon other than an API server ran a newer minor than an API server running
 * at the same moment. Pure.
 */
export function skewViolations(samples: readonly VersionSample[]): string[] {
  const violations: string[] = [];
  for (const sample of samples) {
    const servers = Object.entries(sample.running).filter(([k]) => k.endsWith("/kube-apiserver"));
    if (servers.length === 0) {
      continue;
    }
    const [oldest, oldestVersion] = servers.reduce((a, b) =>
      compareMinor(a[1], b[1]) <= 0 ? a : b,
    );
    for (const [component, version] of Object.entries(sample.running)) {
      if (!component.endsWith("/kube-apiserver") && compareMinor(version, oldestVersion) > 0) {
        violations.push(
          `at ${sample.at.toFixed(0)} s ${component} ran ${version} while ${oldest} ran ${oldestVersion}`,
        );
      }
    }
  }
  return violations;
}

function compareMinor(a: string, b: string): number {
  const [, ma] = a.split(".").map(Number);
  const [, mb] = b.split(".").map(Number);
  return ma - mb;
}

/** When each component was first seen running `minor`, in the order it happened. Pure. */
export function firstReached(
  samples: readonly VersionSample[],
  minor: string,
): { component: string; at: number }[] {
  const first = new Map<string, number>();
  for (const sample of samples) {
    for (const [component, version] of Object.entries(sample.running)) {
      if (minorOf(version) === minor && !first.has(component)) {
        first.set(component, sample.at);
      }
    }
  }
  return [...first.entries()]
    .map(([component, at]) => ({ component, at }))
    .sort((a, b) => a.at - b.at || a.component.localeCompare(b.component));
}

/** Whether `node` was seen cordoned no later than its kubelet was first seen on `minor`. Pure. */
export function cordonedBeforeKubelet(
  samples: readonly VersionSample[],
  node: string,
  minor: string,
): boolean {
  const moved = firstReached(samples, minor).find((f) => f.component === `${node}/kubelet`);
  return (
    moved !== undefined && samples.some((s) => s.unschedulable[node] === true && s.at <= moved.at)
  );
}

async function sample(cluster: Cluster, started: number): Promise<VersionSample> {
  const at = (Date.now() - started) / 1000;
  const running: Record<string, string> = {};
  for (const node of cluster.kubeletNodes()) {
    try {
      const seen = parseRunning(
        await cluster.ssh(node, sampleCommand(), 120_000),
        UPGRADE_FROM.kubernetes,
      );
      for (const [unit, version] of Object.entries(seen)) {
        running[`${node}/${unit}`] = version;
      }
    } catch (err) {
      log(`sample: ${node} did not answer: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  const unschedulable: Record<string, boolean> = {};
  try {
    const nodes = JSON.parse(await cluster.kubectl(["get", "nodes", "-o", "json"])) as {
      items: { metadata: { name: string }; spec: { unschedulable?: boolean } }[];
    };
    for (const item of nodes.items) {
      unschedulable[item.metadata.name] = item.spec.unschedulable === true;
    }
  } catch {
    // An API server restarting: cordons are not known at this moment.
  }
  return { at, running, unschedulable };
}

/** What `up` did, and how long it took, from its event log. */
export interface UpgradeRun {
  readonly status: number | null;
  readonly seconds: number;
  readonly spans: readonly StepSpan[];
  readonly errors: readonly string[];
}

export async function minorUpgrade(
  cluster: Cluster,
  stack: EngineStack,
  up: () => Promise<UpgradeRun>,
): Promise<{ ok: boolean; detail: string }> {
  const from = minorOf(UPGRADE_FROM.kubernetes);
  const to = minorOf(defaultVersions.kubernetes);
  const problems: string[] = [];
  const written = crypto.randomBytes(8).toString("hex");
  await cluster.etcdctl(`put /hardway/e2e ${written}`);
  const echoBefore = await podOf(cluster, "echo");

  stack.must(["config", "set", "--config-file", stack.configFile, "hardway:versions", PINS]);
  // One hour less of validity: every leaf certificate is issued again.
  stack.must([
    "config",
    "set",
    "--config-file",
    stack.configFile,
    "hardway:pki",
    JSON.stringify({ validityHours: 8759 }),
  ]);
  const preview = stack.must(["preview", "--json"], { timeoutMs: 1_800_000 });
  const planned = parsePreview(preview.stdout).steps.filter((s) => s.op !== "same");
  // A release file of the new version is a new cache entry on the host: it is fetched, then the
  // old one released (replace, create first). Everything else is an update.
  const isCacheEntry = (urn: string) => /::k8s-artifacts-[^:]+$/.test(urn);
  const notUpdates = planned.filter(
    (s) => s.op !== "update" && !(s.op === "replace" && isCacheEntry(s.urn)),
  );
  if (notUpdates.length > 0) {
    problems.push(
      `the preview plans more than updates: ${notUpdates.map((s) => `${s.op} ${s.urn.split("::").pop()}`).join(", ")}`,
    );
  }

  const started = Date.now();
  const samples: VersionSample[] = [await sample(cluster, started)];
  let finished: UpgradeRun | undefined;
  const running = up().then((r) => (finished = r));
  while (finished === undefined) {
    await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    if (finished === undefined) {
      samples.push(await sample(cluster, started));
    }
  }
  const result: UpgradeRun = finished;
  samples.push(await sample(cluster, started));
  if (result.status !== 0) {
    problems.push(`up exited ${result.status}: ${result.errors.join("; ")}`);
  }

  const violations = skewViolations(samples);
  problems.push(...violations);
  const order = firstReached(samples, to);
  const value = (await cluster.etcdctl("get /hardway/e2e --print-value-only")).trim();
  if (value !== written) {
    problems.push("the etcd key was LOST");
  }
  // The drained pods come back once their nodes are schedulable again.
  await cluster.kubectl(
    ["rollout", "status", "deployment/echo", "deployment/client", "--timeout=600s"],
    undefined,
    660_000,
  );
  const echoAfter = await podOf(cluster, "echo");
  if (echoAfter === undefined) {
    problems.push("the echo Deployment has no Running pod");
  }
  const status = JSON.parse(await cluster.etcdctl("endpoint status --cluster -w json")) as {
    Status: { version: string };
  }[];
  const etcdVersions = status.map((s) => s.Status.version);
  if (etcdVersions.length === 0 || !etcdVersions.every((v) => v === defaultVersions.etcd)) {
    problems.push(`etcd members run ${etcdVersions.join(", ")}, not ${defaultVersions.etcd}`);
  }
  const last = samples[samples.length - 1];
  const drains = cluster.kubeletNodes().map((node) => {
    const cordoned = cordonedBeforeKubelet(samples, node, to);
    const schedulable = last.unschedulable[node] === false;
    if (!cordoned || !schedulable) {
      problems.push(
        `${node}: ${cordoned ? "" : "not seen cordoned before its kubelet changed; "}${schedulable ? "" : "not schedulable after the upgrade"}`,
      );
    }
    return `${node} ${cordoned ? "cordoned before its kubelet moved" : "NOT SEEN CORDONED"}, ${schedulable ? "schedulable after" : "STILL CORDONED"}`;
  });
  const stillOld = Object.entries(last.running).filter(([, v]) => minorOf(v) !== to);
  if (stillOld.length > 0) {
    problems.push(`still on ${from}: ${stillOld.map(([c, v]) => `${c} ${v}`).join(", ")}`);
  }

  // A second up changes nothing.
  const again = stack.pulumi(["up", "--yes"], { timeoutMs: 1_800_000, inherit: true });
  const changes = lastChanges(stack);
  const changed = Object.entries(changes).filter(([op, n]) => op !== "same" && n > 0);
  if (again.status !== 0 || changed.length > 0) {
    problems.push(`the second up: exit ${again.status}, changes ${JSON.stringify(changes)}`);
  }

  // Going back a minor is refused at preview, saying why; the stack stays as it is.
  stack.must([
    "config",
    "set",
    "--config-file",
    stack.configFile,
    "hardway:versions",
    JSON.stringify({ ...RUN_VERSIONS, kubernetes: UPGRADE_FROM.kubernetes }),
  ]);
  const back = stack.pulumi(["preview"], { timeoutMs: 1_800_000 });
  stack.must(["config", "set", "--config-file", stack.configFile, "hardway:versions", PINS]);
  const refusal = /goes back a minor[^\n]*/.exec(`${back.stdout}${back.stderr}`)?.[0];
  if (back.status === 0 || refusal === undefined) {
    problems.push(
      `going back to ${UPGRADE_FROM.kubernetes} was not refused at preview (exit ${back.status}):\n${back.stdout.slice(-2000)}`,
    );
  }

  const spans = result.spans;
  const ordered = spans.filter((s) => /NodeStep|NodeDrain/.test(s.type));
  const copies = spans.filter((s) => s.type.endsWith("NodeReleases"));
  const span = (list: readonly StepSpan[]) =>
    list.length === 0
      ? "0 s"
      : `${(Math.max(...list.map((s) => s.end)) - Math.min(...list.map((s) => s.start))).toFixed(0)} s`;
  const copied = copiedBytes(stack);
  return {
    ok: problems.length === 0,
    detail: [
      `${UPGRADE_FROM.kubernetes} → ${defaultVersions.kubernetes}, etcd ${UPGRADE_FROM.etcd} → ${defaultVersions.etcd}: preview ${planned.length} changes, all updates or new release files`,
      `up ${result.seconds.toFixed(0)} s: copies ${span(copies)} (${copied}), ordered steps ${span(ordered)}`,
      `${samples.length} samples, ${violations.length} skew violations; first on ${to}: ${order.map((o) => `${o.component} ${o.at.toFixed(0)} s`).join(", ")}`,
      `drains: ${drains.join("; ")}`,
      `etcd key ${value === written ? "kept" : "LOST"}, members on ${etcdVersions.join(", ")}; echo pod ${echoBefore?.uid === echoAfter?.uid ? "kept" : `moved (${echoBefore?.node} → ${echoAfter?.node}), Running`}`,
      `second up: ${changed.length === 0 ? `${changes.same} same` : JSON.stringify(changes)}; going back refused: ${refusal ?? "NO"}`,
      ...(problems.length > 0 ? [`PROBLEMS: ${problems.join("; ")}`] : []),
    ].join("\n  "),
  };
}

/** Bytes each VM's NodeReleases copied in the last update, from the stack's state. */
function copiedBytes(stack: EngineStack): string {
  const state = JSON.parse(stack.must(["stack", "export"]).stdout) as {
    deployment: {
      resources?: {
        type: string;
        outputs?: { node?: string; copied?: { files: number; bytes: number; seconds: number } };
      }[];
    };
  };
  return (state.deployment.resources ?? [])
    .filter((r) => r.type.endsWith("NodeReleases") && r.outputs?.copied !== undefined)
    .map((r) => {
      const c = r.outputs?.copied;
      return `${r.outputs?.node}: ${c?.files} files, ${((c?.bytes ?? 0) / 1e6).toFixed(0)} MB in ${c?.seconds.toFixed(0)} s`;
    })
    .join(", ");
}
