/**
 * The HA run's phases (issue 17): what three control planes behind the VIP must survive. Each
 * phase returns its verdict and what it measured; `local.ts` sequences them.
 *
 * - haChecks: etcd 3/3 healthy, every API server's own /readyz, the `kubernetes` Service's
 *   EndpointSlice listing every API server.
 * - failover: one control VM's QEMU killed while /readyz through the VIP is asked every second
 *   and etcd takes writes through the members left; the longest window of failed requests, and
 *   that no acknowledged write was lost.
 * - recovery: `up` restarts the killed VM and its member and API server come back.
 * - replacement: a control VM's disk deleted, so it comes back empty; `up` removes its old
 *   etcd member and adds it again (a new member ID), and a key written before is read after.
 * - rollingUpgrade: a patch upgrade of Kubernetes and etcd while the ready API servers and the
 *   healthy members are sampled: never fewer than two of either.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultVersions } from "../../components/config/defaults";
import { vmStateDir } from "../../components/host/layout";
import { EMULATED_ETCD_TIMING, ETCD_CLIENT_PORT } from "../../components/kubernetes/etcd";
import { EMULATED_CHECKS } from "../../components/kubernetes/loadBalancer";
import { CA_FILES, certFiles } from "../../components/kubernetes/paths";
import { EngineStack, parsePreview } from "../engine/engine";
import { waitFor } from "../smoke/checks";
import { runCommand } from "../smoke/run";
import { Cluster, POLLING, log } from "./cluster";
import { killVms } from "./hostFaults";
import { PATCH_FROM } from "./mirror";

export interface Verdict {
  readonly ok: boolean;
  readonly detail: string;
}

/** One request of a poll: when it was made (seconds into the phase) and whether it succeeded. */
export interface Poll {
  readonly at: number;
  readonly ok: boolean;
}

/**
 * The longest outage in a series of polls: from the first failed request to the first
 * successful one after it (to the last request when none succeeded again). Pure.
 */
export function longestOutage(polls: readonly Poll[]): { seconds: number; from: number } {
  let longest = { seconds: 0, from: 0 };
  let failingSince: number | undefined;
  for (const poll of polls) {
    if (!poll.ok && failingSince === undefined) {
      failingSince = poll.at;
    } else if (poll.ok && failingSince !== undefined) {
      if (poll.at - failingSince > longest.seconds) {
        longest = { seconds: poll.at - failingSince, from: failingSince };
      }
      failingSince = undefined;
    }
  }
  const last = polls[polls.length - 1];
  if (failingSince !== undefined && last.at - failingSince >= longest.seconds) {
    longest = { seconds: last.at - failingSince, from: failingSince };
  }
  return longest;
}

/**
 * The writer's output (`ok N` or `fail N`, a line per put) read back: which keys etcd
 * acknowledged and how many puts failed. Pure.
 */
export function parseWrites(output: string): { acknowledged: number[]; failed: number } {
  const acknowledged: number[] = [];
  let failed = 0;
  for (const line of output.split("\n")) {
    const match = /^(ok|fail) (\d+)$/.exec(line.trim());
    if (match?.[1] === "ok") {
      acknowledged.push(Number(match[2]));
    } else if (match?.[1] === "fail") {
      failed++;
    }
  }
  return { acknowledged, failed };
}

/** The keys of `get --prefix --keys-only` that are missing from it, of those acknowledged. Pure. */
export function lostWrites(
  acknowledged: readonly number[],
  keys: string,
  prefix: string,
): number[] {
  const stored = new Set(
    keys
      .split("\n")
      .map((k) => k.trim())
      .filter((k) => k.startsWith(prefix))
      .map((k) => Number(k.slice(prefix.length))),
  );
  return acknowledged.filter((n) => !stored.has(n));
}

/**
 * The minimum of each sampled count, how many samples there were, and how many of them caught
 * etcd choosing a leader (see rollingUpgrade). Pure.
 */
export function minimums(
  samples: readonly { readonly api: number; readonly etcd: number; readonly election?: boolean }[],
): {
  api: number;
  etcd: number;
  samples: number;
  elections: number;
} {
  return {
    api: Math.min(...samples.map((s) => s.api)),
    etcd: Math.min(...samples.map((s) => s.etcd)),
    samples: samples.length,
    elections: samples.filter((s) => s.election === true).length,
  };
}

/**
 * How long a sample that caught etcd without a leader waits before it asks the members again:
 * twice the election timeout of emulated members, the longest a follower waits before it
 * stands for election (Raft draws it between one and two timeouts). A leader that stops hands
 * its leadership on first (in HA run 12 the members had none for 0.4 s), and a quorum elects
 * another within this; only a cluster that has none after it has lost its quorum.
 */
export const ELECTION_WAIT_MS = 2 * EMULATED_ETCD_TIMING.electionTimeoutMs;

/**
 * What the samples so far say, for the phase's verdict and for the line the run prints every
 * few minutes while `up` runs (a run stopped halfway still says its minimum). Pure.
 */
export function samplesLine(low: ReturnType<typeof minimums>): string {
  return `${low.samples} samples, at least ${low.api} API servers ready and ${low.etcd} members healthy at every one (${low.elections} caught etcd between two leaders and asked again ${ELECTION_WAIT_MS / 1000} s later)`;
}

/** How often the rolling upgrade prints samplesLine while `up` runs. */
const SAMPLES_LINE_EVERY_S = 300;

/** etcdctl on a control node through every member's client URL, with the health-check client. */
function etcdctlCommand(cluster: Cluster, args: string): string {
  const client = certFiles("etcd-healthcheck-client");
  const endpoints = cluster
    .controls()
    .map((n) => `https://${cluster.outputs.nodes[n].ip}:${ETCD_CLIENT_PORT}`)
    .join(",");
  return `sudo /usr/local/bin/etcdctl --endpoints=${endpoints} --cacert=${CA_FILES["etcd-ca"].cert} --cert=${client.cert} --key=${client.key} --dial-timeout=5s --command-timeout=10s ${args}`;
}

/**
 * How long an API server may take to answer /readyz (and an etcd member /health) and still
 * count as ready: the limit the load balancer's checks give an API server on emulated guests,
 * after which it would stop sending clients there. (With 5 s, on a host at load 6, the samples counted no server ready while each answered
 * `ok` within 3.4 s when asked one at a time.)
 */
const READY_WITHIN_SECONDS = EMULATED_CHECKS.checkTimeout ?? 20;

/** What one /readyz?verbose asked with curl said: ok, or why not. Pure. */
export function readyzVerdict(result: { code: number | null; stdout: string; stderr: string }): {
  ok: boolean;
  why: string;
} {
  const status = /(\d{3}) ([\d.]+)$/.exec(result.stdout.trim());
  if (result.code !== 0 || status === null) {
    const reason = result.stderr.trim().split("\n").pop() ?? "";
    return { ok: false, why: reason || `curl exited ${result.code}` };
  }
  const failed = [...result.stdout.matchAll(/^\[-\]([^ ]+)/gm)].map((m) => m[1]);
  const seconds = Number(status[2]).toFixed(1);
  return status[1] === "200"
    ? { ok: true, why: `ok in ${seconds} s` }
    : {
        ok: false,
        why: `${status[1]} in ${seconds} s${failed.length > 0 ? `: ${failed.join(" ")}` : ""}`,
      };
}

/** One request from the host with curl, given READY_WITHIN_SECONDS to answer. */
function askWithin(url: string, options: readonly string[]) {
  return runCommand("curl", ["-sS", "--max-time", String(READY_WITHIN_SECONDS), ...options, url]);
}

/**
 * Each control node's own /readyz (anonymous, from the host), asked once, all at once: the
 * ready ones, and what each that was not said.
 */
async function apiReadiness(cluster: Cluster): Promise<{ ready: string[]; not: string[] }> {
  const answers = await Promise.all(
    cluster.controls().map(async (node) => {
      const result = await askWithin(
        `https://${cluster.outputs.nodes[node].ip}:6443/readyz?verbose`,
        ["--cacert", path.join(cluster.dir, "ca.crt"), "-w", "\n%{http_code} %{time_total}"],
      );
      return { node, ...readyzVerdict(result) };
    }),
  );
  return {
    ready: answers.filter((a) => a.ok).map((a) => a.node),
    not: answers.filter((a) => !a.ok).map((a) => `${a.node} (${a.why})`),
  };
}

/** The control nodes whose API server is ready (apiReadiness). */
async function readyApiServers(cluster: Cluster): Promise<string[]> {
  return (await apiReadiness(cluster)).ready;
}

/** Files of the etcd CA and the health-check client's pair, in the run's directory. */
interface EtcdClient {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * The etcd CA and the health-check client's certificate and key, copied once from `via` into
 * the run's directory: the samples then ask each member from the host, so a control node too
 * starved to answer SSH does not make every member look unhealthy.
 */
async function etcdClient(cluster: Cluster, via: string): Promise<EtcdClient> {
  const client = certFiles("etcd-healthcheck-client");
  const sources = { ca: CA_FILES["etcd-ca"].cert, cert: client.cert, key: client.key };
  const local = {
    ca: path.join(cluster.dir, "etcd-ca.crt"),
    cert: path.join(cluster.dir, "etcd-healthcheck-client.crt"),
    key: path.join(cluster.dir, "etcd-healthcheck-client.key"),
  };
  for (const name of ["ca", "cert", "key"] as const) {
    const text = await cluster.ssh(via, `sudo cat ${sources[name]}`);
    fs.writeFileSync(local[name], text, { mode: 0o600 });
  }
  return local;
}

/**
 * The members that answer their own /health (a linearizable read: it needs a leader and a
 * quorum) as healthy within the same limit as the API servers, each asked from the host at
 * once; and what each of the others answered.
 */
async function healthyMembers(
  cluster: Cluster,
  client: EtcdClient,
): Promise<{ healthy: string[]; not: string[]; noLeader: boolean }> {
  const answers = await Promise.all(
    cluster.controls().map(async (node) => {
      const result = await askWithin(
        `https://${cluster.outputs.nodes[node].ip}:${ETCD_CLIENT_PORT}/health`,
        ["--cacert", client.ca, "--cert", client.cert, "--key", client.key],
      );
      const ok = result.code === 0 && memberHealthy(result.stdout);
      const said = result.code === 0 ? result.stdout.trim() : result.stderr.trim();
      return { node, ok, said: said.split("\n").pop() ?? "" };
    }),
  );
  return {
    healthy: answers.filter((a) => a.ok).map((a) => a.node),
    not: answers.filter((a) => !a.ok).map((a) => `${a.node} (${a.said})`),
    noLeader: answers.some((a) => memberSeesNoLeader(a.said)),
  };
}

/** Whether a member's /health answer says healthy (`{"health":"true",…}`). Pure. */
export function memberHealthy(answer: string): boolean {
  return healthAnswer(answer)?.health === "true";
}

/**
 * Whether a member's /health answer says the cluster is between two leaders: it has none
 * (`RAFT NO LEADER`), or the leader changed while the member's read was waiting for it
 * (`RANGE ERROR:etcdserver: leader changed`, or `no leader`). Pure.
 */
export function memberSeesNoLeader(answer: string): boolean {
  const reason = healthAnswer(answer)?.reason;
  return (
    reason === "RAFT NO LEADER" ||
    (typeof reason === "string" && /etcdserver: (leader changed|no leader)$/.test(reason))
  );
}

function healthAnswer(answer: string): { health?: unknown; reason?: unknown } | undefined {
  try {
    return JSON.parse(answer) as { health?: unknown; reason?: unknown };
  } catch {
    return undefined;
  }
}

/**
 * etcd 3/3 healthy, every API server ready on its own address, and all of them in the
 * `kubernetes` Service's EndpointSlice (each API server adds itself there once it is ready).
 */
export async function haChecks(cluster: Cluster): Promise<string> {
  cluster.refreshOutputs();
  const controls = cluster.controls();
  const health = await cluster.etcdctl("endpoint health --cluster");
  const healthy = health.match(/is healthy/g)?.length ?? 0;
  if (healthy !== controls.length) {
    throw new Error(`etcd: ${healthy} of ${controls.length} members healthy:\n${health}`);
  }
  const ready = await waitFor(POLLING, "every API server's /readyz", 600_000, async () => {
    const answering = await readyApiServers(cluster);
    return answering.length === controls.length
      ? { done: true, value: answering }
      : { done: false, state: `ready: ${answering.join(", ") || "none"}` };
  });
  const expected = controls.map((n) => cluster.outputs.nodes[n].ip).sort();
  const listed = await waitFor(POLLING, "the kubernetes EndpointSlice", 300_000, async () => {
    const out = await cluster.kubectl([
      "get",
      "endpointslice",
      "-n",
      "default",
      "-l",
      "kubernetes.io/service-name=kubernetes",
      "-o",
      "jsonpath={.items[*].endpoints[*].addresses[*]}",
    ]);
    const addresses = out.trim().split(/\s+/).filter(Boolean).sort();
    return addresses.join(",") === expected.join(",")
      ? { done: true, value: addresses }
      : { done: false, state: `lists ${addresses.join(", ") || "nothing"}` };
  });
  const arp = await vipNeighbour(cluster);
  return `etcd ${healthy}/${controls.length} healthy; /readyz ok on ${ready.join(", ")}; EndpointSlice kubernetes lists ${listed.join(", ")}; ${arp}`;
}

/**
 * Who answered the host's ARP request for the VIP: the gateway, never a control node that holds
 * the VIP on lo (their ARP settings come first, renderVipUnit).
 */
async function vipNeighbour(cluster: Cluster): Promise<string> {
  const vip = cluster.apiServerUrl().hostname;
  // Forget what the host knew, then ask once through the VIP.
  await runCommand("ip", ["neigh", "flush", "to", vip]);
  await runCommand("curl", ["-sS", "-k", "--max-time", "10", `https://${vip}/healthz`]);
  const neigh = await runCommand("ip", ["neigh", "show", "to", vip]);
  const mac = /lladdr (\S+)/.exec(neigh.stdout)?.[1]?.toLowerCase();
  const owner = Object.entries(cluster.outputs.nodes).find(([, n]) => n.mac.toLowerCase() === mac);
  if (owner?.[1].role !== "gateway") {
    throw new Error(
      `the host's ARP entry for the VIP ${vip} is ${neigh.stdout.trim() || "missing"}: ${owner === undefined ? "no node's MAC" : `${owner[0]}'s, not the gateway's`}`,
    );
  }
  return `the VIP's ARP answered by ${owner[0]} (${mac})`;
}

/** Seconds the failover phase writes to etcd and polls the VIP. */
const FAILOVER_SECONDS = 90;
const FAILOVER_PREFIX = "/hardway/failover/";

/**
 * Kills `node`'s QEMU while /readyz through the VIP is asked every second and a writer on
 * `writer` puts a key every second through every member's URL.
 */
export async function failover(
  cluster: Cluster,
  stackName: string,
  node: string,
  writer: string,
): Promise<Verdict> {
  const vip = cluster.apiServerUrl();
  // One shell loop on the writer node: a put a second, each acknowledged or not.
  const put = etcdctlCommand(cluster, `put ${FAILOVER_PREFIX}$i $i`);
  const writes = cluster.ssh(
    writer,
    `for i in $(seq 1 ${FAILOVER_SECONDS}); do if ${put} >/dev/null 2>&1; then echo "ok $i"; else echo "fail $i"; fi; sleep 1; done`,
    (FAILOVER_SECONDS * 15 + 60) * 1000,
  );
  const started = Date.now();
  // A request leaves every second whether or not the one before has answered: a slow answer
  // (up to 5 s) does not thin out the samples, so a window is measured to the second.
  const pending: Promise<Poll>[] = [];
  let killed = 0;
  while ((Date.now() - started) / 1000 < FAILOVER_SECONDS) {
    const at = (Date.now() - started) / 1000;
    if (killed === 0 && at >= 5) {
      // The trailing space: control1, not control10.
      await killVms(stackName, `${node} `);
      killed = (Date.now() - started) / 1000;
      log(`failover: ${node}'s QEMU killed at ${killed.toFixed(1)} s`);
    }
    pending.push(
      cluster.askHealth(`https://${vip.host}/readyz`, 5).then((answer) => ({ at, ok: answer.ok })),
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const polls = (await Promise.all(pending)).sort((a, b) => a.at - b.at);
  const failedBefore = polls.filter((p) => p.at < killed && !p.ok).length;
  const { acknowledged, failed } = parseWrites(await writes);
  const keys = await cluster.etcdctl(`get ${FAILOVER_PREFIX} --prefix --keys-only`);
  const lost = lostWrites(acknowledged, keys, FAILOVER_PREFIX);
  const outage = longestOutage(polls);
  const failedPolls = polls.filter((p) => !p.ok).length;
  const afterKill = polls.filter((p) => p.at >= killed);
  const answering = afterKill.slice(-10).every((p) => p.ok);
  return {
    ok: lost.length === 0 && acknowledged.length > 0 && answering,
    detail: `${node} killed at ${killed.toFixed(1)} s; ${failedPolls} of ${polls.length} /readyz through the VIP failed (${failedBefore} of them before the kill), the longest window ${outage.seconds.toFixed(1)} s (from ${outage.from.toFixed(1)} s); the last 10 ${answering ? "answered" : "did NOT all answer"}; etcd: ${acknowledged.length} writes acknowledged, ${failed} refused, ${lost.length === 0 ? "none lost" : `LOST ${lost.join(", ")}`}`,
  };
}

/** After `up` brought a stopped control node back: its member and API server serve again. */
export async function recovery(cluster: Cluster, up: () => { seconds: number }): Promise<Verdict> {
  const result = up();
  return { ok: true, detail: `up ${result.seconds.toFixed(0)} s; ${await haChecks(cluster)}` };
}

interface Member {
  /** Hex, as etcdctl prints it (JSON would round the 64-bit number). */
  readonly id: string;
  readonly name: string;
}

/** `member list -w simple` read back: `ID, status, name, peer URLs, client URLs, learner`. Pure. */
export function parseMembers(simple: string): Member[] {
  return simple
    .split("\n")
    .map((line) => line.split(", "))
    .filter((fields) => fields.length >= 3)
    .map(([id, , name]) => ({ id, name }));
}

async function members(cluster: Cluster): Promise<Member[]> {
  return parseMembers(await cluster.etcdctl("member list -w simple"));
}

/**
 * `node` comes back with an empty disk: its etcd member is removed and added again under a new
 * ID, and the data written before is still read.
 */
export async function replacement(
  cluster: Cluster,
  stack: EngineStack,
  node: string,
  up: () => { seconds: number },
): Promise<Verdict> {
  const written = crypto.randomBytes(8).toString("hex");
  await cluster.etcdctl(`put /hardway/replacement ${written}`);
  const before = (await members(cluster)).find((m) => m.name === node);
  await killVms(stack.name, `${node} `);
  const disk = path.join(vmStateDir(stack.name, node), "disk.qcow2");
  fs.rmSync(disk);
  log(`replacement: ${node}'s QEMU killed and ${disk} deleted`);
  const preview = stack.must(["preview", "--json"], { timeoutMs: 1_800_000 });
  const planned = parsePreview(preview.stdout).steps.filter((s) => s.op !== "same");
  const notUpdates = planned.filter((s) => s.op !== "update");
  const result = up();
  const after = await members(cluster);
  const now = after.find((m) => m.name === node);
  const value = (await cluster.etcdctl("get /hardway/replacement --print-value-only")).trim();
  const checks = await haChecks(cluster);
  const problems = [
    ...(notUpdates.length > 0
      ? [
          `the preview plans ${notUpdates.map((s) => `${s.op} ${s.urn.split("::").pop()}`).join(", ")}`,
        ]
      : []),
    ...(now === undefined ? [`${node} is no member`] : []),
    ...(now !== undefined && before !== undefined && now.id === before.id
      ? [`${node} kept its member ID ${before.id}`]
      : []),
    ...(after.length !== cluster.controls().length ? [`${after.length} members`] : []),
    ...(value !== written ? ["the key written before is LOST"] : []),
  ];
  return {
    ok: problems.length === 0,
    detail: `preview: ${planned.length} updates (${planned.filter((s) => s.urn.includes(node)).length} of ${node}); up ${result.seconds.toFixed(0)} s; member ${node} ${before?.id ?? "?"} → ${now?.id ?? "none"}; key ${value === written ? "kept" : "LOST"}; ${checks}${problems.length > 0 ? `; PROBLEMS: ${problems.join("; ")}` : ""}`,
  };
}

/**
 * The patch upgrade from PATCH_FROM to the pins while `up` runs: the ready API servers (each
 * one's /readyz) and the healthy members (through every member's URL) sampled until it ends.
 */
export async function rollingUpgrade(
  cluster: Cluster,
  stack: EngineStack,
  pins: string,
  up: () => Promise<{ status: number | null; seconds: number; errors: readonly string[] }>,
): Promise<Verdict> {
  stack.must(["config", "set", "--config-file", stack.configFile, "hardway:versions", pins]);
  const preview = stack.must(["preview", "--json"], { timeoutMs: 1_800_000 });
  const planned = parsePreview(preview.stdout).steps.filter((s) => s.op !== "same");
  const started = Date.now();
  const client = await etcdClient(cluster, cluster.controls()[0]);
  const samples: { at: number; api: number; etcd: number; election: boolean }[] = [];
  let finished: Awaited<ReturnType<typeof up>> | undefined;
  let printed = 0;
  const running = up().then((r) => (finished = r));
  while (finished === undefined) {
    const [api, first] = await Promise.all([
      apiReadiness(cluster),
      healthyMembers(cluster, client),
    ]);
    const at = (Date.now() - started) / 1000;
    let etcd = first;
    // Caught between two leaders: the count that says whether the quorum held is the one after
    // the longest an election may take to start (ELECTION_WAIT_MS).
    const election = first.healthy.length < 2 && first.noLeader;
    if (election) {
      log(
        `rolling upgrade at ${at.toFixed(0)} s: etcd has no leader (healthy ${first.healthy.join(", ") || "none"}; not: ${first.not.join("; ")}); asking again in ${ELECTION_WAIT_MS / 1000} s`,
      );
      await new Promise((resolve) => setTimeout(resolve, ELECTION_WAIT_MS));
      etcd = await healthyMembers(cluster, client);
    }
    samples.push({ at, api: api.ready.length, etcd: etcd.healthy.length, election });
    if (api.ready.length < 2 || etcd.healthy.length < 2) {
      log(
        `rolling upgrade at ${at.toFixed(0)} s: API servers ready ${api.ready.join(", ") || "none"} (not: ${api.not.join("; ")}), etcd members healthy ${etcd.healthy.join(", ") || "none"} (not: ${etcd.not.join("; ")})`,
      );
    }
    if (at - printed >= SAMPLES_LINE_EVERY_S) {
      printed = at;
      log(`rolling upgrade at ${at.toFixed(0)} s: ${samplesLine(minimums(samples))}`);
    }
    await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 3_000))]);
  }
  const result: Awaited<ReturnType<typeof up>> = finished;
  const status = JSON.parse(await cluster.etcdctl("endpoint status --cluster -w json")) as {
    Status: { version: string };
  }[];
  const etcdVersions = status.map((s) => s.Status.version);
  const apiVersions = await Promise.all(
    cluster
      .controls()
      .map(async (n) =>
        (await cluster.ssh(n, "/usr/local/bin/kube-apiserver --version"))
          .trim()
          .replace(/^Kubernetes /, ""),
      ),
  );
  const low = minimums(samples);
  const problems = [
    ...(result.status !== 0 ? [`up exited ${result.status}: ${result.errors.join("; ")}`] : []),
    ...(low.api < 2 ? [`only ${low.api} API server(s) ready at one sample`] : []),
    ...(low.etcd < 2 ? [`only ${low.etcd} member(s) healthy at one sample`] : []),
    ...(!etcdVersions.every((v) => v === defaultVersions.etcd)
      ? [`etcd runs ${etcdVersions.join(", ")}`]
      : []),
    ...(!apiVersions.every((v) => v === `v${defaultVersions.kubernetes}`)
      ? [`kube-apiserver runs ${apiVersions.join(", ")}`]
      : []),
  ];
  return {
    ok: problems.length === 0,
    detail: `${PATCH_FROM.kubernetes} → ${defaultVersions.kubernetes}, etcd ${PATCH_FROM.etcd} → ${defaultVersions.etcd}: preview ${planned.length} changes; up ${result.seconds.toFixed(0)} s; ${samplesLine(low)}${problems.length > 0 ? `; PROBLEMS: ${problems.join("; ")}` : ""}`,
  };
}
