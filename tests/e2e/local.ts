/**
 * The end-to-end run in local mode: the program itself brings up a real cluster on software-
 * emulated (TCG) VMs, offline, on this machine, then lives through a no-op `up`, an upgrade, a
 * host reboot and its destruction. Everything it needs is built from Go modules and Debian
 * packages and cached: the Pulumi toolchain (tests/engine/toolchain.sh), the release mirror
 * (build-mirror.sh), a prebaked guest image (build-image.sh) and the pod image archives
 * (ociArchives.ts).
 *
 * The whole cluster runs inside a network namespace and a mount namespace this run makes: the
 * bridge, dnsmasq, NAT, routes and VMs never touch the host's own network, and /var/lib/hardway,
 * /etc/exports and /var/lib/nfs are bound to temporary ones. The run re-executes itself inside
 * them (`--inside`), and everything left in the namespace is killed when it ends.
 */
import { spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import { defaultVersions } from "../../components/config/defaults";
import { bridgeName, natTableName } from "../../components/host/layout";
import { CA_FILES, certFiles } from "../../components/kubernetes/paths";
import { EngineStack, lastChanges, newStack, parsePreview, toolchainEnv } from "../engine/engine";
import { inSandbox, makeSandbox, removeSandbox } from "../harness/namespaces";
import { Polling, realClock, waitFor } from "../smoke/checks";
import { runCommand } from "../smoke/run";
import { findLeaks, readHostState } from "./leaks";
import { onePathFrom } from "../harness/scriptOutput";
import { buildMirror, cacheRoot, previousPatch } from "./mirror";
import { ECHO_IMAGE, ECHO_PORT, buildPodImageArchives, peerAddress } from "./ociArchives";
import { PhaseResult, errorDiagnostics, runPhase, summarize } from "./phases";
import { FoundRun, RUN_RECORD, RunRecord, abandonedRuns, isWorkDir, parseRunRecord } from "./runs";

const log = (line: string) => console.log(`[e2e ${new Date().toISOString()}] ${line}`);

/** A topology of the run: how many nodes, and what else it proves. */
export interface Topology {
  readonly name: string;
  readonly controlPlanes: 1 | 3;
  readonly workers: number;
}

export const SMALL: Topology = { name: "small", controlPlanes: 1, workers: 1 };
export const HA: Topology = { name: "ha", controlPlanes: 3, workers: 1 };

interface Prepared {
  readonly mirror: string;
  readonly image: string;
  readonly archives: { readonly pause: string; readonly echo: string };
}

const E2E_DIR = __dirname;
const timed = async <T>(what: string, body: () => T | Promise<T>): Promise<T> => {
  const started = Date.now();
  const result = await body();
  log(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
};

/** The value a build script prints on stdout (its progress goes to stderr, shown as it runs). */
function scriptValue(script: string, args: readonly string[]): string {
  const result = spawnSync("bash", [script, ...args], {
    encoding: "utf8",
    timeout: 7_200_000,
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (result.status !== 0) {
    throw new Error(`${script} ${args.join(" ")} exited ${result.status ?? result.signal}`);
  }
  return result.stdout;
}

export const BUILD_IMAGE_SCRIPT = path.join(E2E_DIR, "build-image.sh");

/** Builds (or finds cached) everything the run needs; each part timed. */
export async function prepare(): Promise<Prepared> {
  await timed("toolchain", () => toolchainEnv());
  const mirror = await timed("release mirror", () => buildMirror());
  const image = await timed("guest image", () =>
    onePathFrom(
      BUILD_IMAGE_SCRIPT,
      scriptValue(BUILD_IMAGE_SCRIPT, ["--out", path.join(cacheRoot(), "e2e", "image")]),
    ),
  );
  const archives = await timed("pod image archives", () =>
    buildPodImageArchives(path.join(cacheRoot(), "e2e", "pod-images"), defaultVersions.kubernetes),
  );
  return { mirror, image, archives };
}

/** The throwaway stack's configuration for a topology. */
export function stackConfig(topology: Topology, prepared: Prepared): Record<string, string> {
  return {
    "hardway:arch": "amd64",
    "hardway:accelerator": "tcg",
    "hardway:controlPlanes": String(topology.controlPlanes),
    "hardway:workers": String(topology.workers),
    "hardway:stopAfter": "nodes",
    "hardway:releaseMirror": prepared.mirror,
    "hardway:podImages": JSON.stringify([prepared.archives.pause, prepared.archives.echo]),
    "hardway:image": JSON.stringify({
      path: path.join(prepared.image, "disk.raw"),
      prebaked: true,
      user: "hardway",
      kernel: path.join(prepared.image, "vmlinuz"),
      initrd: path.join(prepared.image, "initrd.img"),
    }),
    "hardway:versions": JSON.stringify({ kubernetes: previousPatch(defaultVersions.kubernetes) }),
    "hardway:vm": JSON.stringify({
      gateway: { cpus: 1, memory: 512, disk: 8 },
      control: { cpus: 2, memory: 2048, disk: 12 },
      worker: { cpus: 2, memory: 1536, disk: 12 },
    }),
  };
}

// ---- inside the namespaces ----------------------------------------------------------------------

interface Outputs {
  readonly kubeconfig: string;
  readonly sshPrivateKey: string;
  readonly caCertPem: string;
  readonly nodes: Record<string, { ip: string; role: string }>;
}

class Cluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-e2e-cluster-"));
  readonly kubectlBin: string;
  outputs!: Outputs;

  constructor(
    readonly stack: EngineStack,
    mirror: string,
  ) {
    // The kubectl of the cluster's own version, from the mirror (the distribution's is older).
    this.kubectlBin = path.join(
      mirror,
      "dl.k8s.io/release",
      `v${defaultVersions.kubernetes}`,
      "bin/linux/amd64/kubectl",
    );
    fs.chmodSync(this.kubectlBin, 0o755);
  }

  refreshOutputs(): void {
    const out = this.stack.must(["stack", "output", "--json", "--show-secrets"]);
    this.outputs = JSON.parse(out.stdout) as Outputs;
    fs.writeFileSync(path.join(this.dir, "kubeconfig"), this.outputs.kubeconfig, { mode: 0o600 });
    fs.writeFileSync(path.join(this.dir, "ssh-key"), this.outputs.sshPrivateKey, { mode: 0o600 });
    fs.writeFileSync(path.join(this.dir, "ca.crt"), this.outputs.caCertPem);
  }

  async kubectl(args: readonly string[], input?: string, timeoutMs = 120_000): Promise<string> {
    const result = await runCommand(
      this.kubectlBin,
      ["--kubeconfig", path.join(this.dir, "kubeconfig"), ...args],
      { input, timeoutMs },
    );
    if (result.code !== 0) {
      throw new Error(`kubectl ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
    }
    return result.stdout;
  }

  async ssh(node: string, command: string, timeoutMs = 120_000): Promise<string> {
    const ip = this.outputs.nodes[node].ip;
    const result = await runCommand(
      "ssh",
      [
        "-i",
        path.join(this.dir, "ssh-key"),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        `hardway@${ip}`,
        command,
      ],
      { timeoutMs },
    );
    if (result.code !== 0) {
      throw new Error(`ssh ${node} ${command} exited ${result.code}: ${result.stderr}`);
    }
    return result.stdout;
  }

  /**
   * etcdctl on control0. Its defaults (2 s to connect, 5 s per request) are too short for a
   * loaded TCG guest, where one TLS handshake can take longer: wait longer, and ask again for
   * up to three minutes (every request the checks make is a get, or a put of the same value).
   */
  async etcdctl(args: string): Promise<string> {
    const client = certFiles("etcd-healthcheck-client");
    const command = `sudo /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=${CA_FILES["etcd-ca"].cert} --cert=${client.cert} --key=${client.key} --dial-timeout=30s --command-timeout=60s ${args}`;
    return waitFor(POLLING, `etcdctl ${args}`, 180_000, async () => {
      try {
        return { done: true, value: await this.ssh("control0", command) };
      } catch (error) {
        return { done: false, state: `failing: ${(error as Error).message}` };
      }
    });
  }

  dispose(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** How the checks poll for a cluster that is still settling. */
const POLLING: Polling = { clock: realClock, timeouts: { pollIntervalMs: 5_000 } };

const podManifest = (name: string, node: string, command?: string[]) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, labels: { app: name } },
  spec: {
    nodeSelector: { "kubernetes.io/hostname": node },
    tolerations: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
    containers: [
      {
        name,
        image: ECHO_IMAGE,
        imagePullPolicy: "Never",
        ...(command ? { command } : {}),
      },
    ],
  },
});

/** The checks of a converged cluster; each timed, all run (every failure reported). */
async function clusterChecks(cluster: Cluster, topology: Topology): Promise<string> {
  cluster.refreshOutputs();
  const notes: string[] = [];
  const health = await cluster.etcdctl("endpoint health --cluster");
  const healthy = health.match(/is healthy/g)?.length ?? 0;
  if (healthy !== topology.controlPlanes) {
    throw new Error(`etcd: ${healthy} of ${topology.controlPlanes} members healthy:\n${health}`);
  }
  notes.push(`etcd ${healthy}/${topology.controlPlanes} healthy`);
  const vip = new URL(
    JSON.parse(cluster.stack.must(["stack", "output", "apiServer", "--json"]).stdout) as string,
  );
  // Asked again for up to two minutes: a loaded TCG guest can miss one 10 s deadline.
  await waitFor(POLLING, "/healthz through the VIP", 120_000, async () => {
    const healthz = await runCommand("curl", [
      "-sS",
      "--max-time",
      "10",
      "--cacert",
      path.join(cluster.dir, "ca.crt"),
      `https://${vip.host}/healthz`,
    ]);
    return healthz.stdout.trim() === "ok"
      ? { done: true, value: undefined }
      : { done: false, state: `answering ${healthz.stdout}${healthz.stderr}` };
  });
  notes.push("/healthz ok through the VIP");
  await cluster.kubectl(
    ["wait", "--for=condition=Ready", "node", "--all", "--timeout=900s"],
    undefined,
    960_000,
  );
  const nodes = (await cluster.kubectl(["get", "nodes", "-o", "name"])).trim().split("\n");
  if (nodes.length !== topology.controlPlanes + topology.workers) {
    throw new Error(
      `expected ${topology.controlPlanes + topology.workers} nodes, got ${nodes.join(", ")}`,
    );
  }
  notes.push(`${nodes.length} nodes Ready`);

  const secretName = `e2e-${crypto.randomBytes(3).toString("hex")}`;
  await cluster.kubectl(["create", "secret", "generic", secretName, "--from-literal=k=v"]);
  const raw = await cluster.etcdctl(
    `get /registry/secrets/default/${secretName} --print-value-only`,
  );
  if (!raw.startsWith("k8s:enc:secretbox:v1:key1:")) {
    throw new Error(`the Secret is not encrypted in etcd: ${JSON.stringify(raw.slice(0, 40))}`);
  }
  await cluster.kubectl(["delete", "secret", secretName]);
  notes.push("Secret stored as k8s:enc:secretbox:v1:key1:");

  // The service-account controller creates "default" in each namespace a few seconds after
  // the controller-manager starts; a pod applied before that is refused.
  await cluster.kubectl(
    ["wait", "--for=create", "serviceaccount/default", "--timeout=300s"],
    undefined,
    320_000,
  );
  const existing = (await cluster.kubectl(["get", "pods", "-o", "name"])).trim();
  if (!existing.includes("pod/echo")) {
    await cluster.kubectl(["apply", "-f", "-"], stringify(podManifest("echo", "worker0")));
  }
  if (!existing.includes("pod/client")) {
    await cluster.kubectl(
      ["apply", "-f", "-"],
      stringify(podManifest("client", "control0", ["/bin/busybox", "sleep", "1000000"])),
    );
  }
  await cluster.kubectl(
    ["wait", "--for=condition=Ready", "pod/echo", "pod/client", "--timeout=900s"],
    undefined,
    960_000,
  );
  const ip = async (pod: string) =>
    (await cluster.kubectl(["get", "pod", pod, "-o", "jsonpath={.status.podIP}"])).trim();
  // Right after a host reboot the API may still show a pod Ready with the address of its old
  // sandbox until its kubelet reports the new one: read the addresses again until a request
  // gets through, then judge the address the pod saw.
  const fromHost = await waitFor(POLLING, "the host reaching pod echo", 300_000, async () => {
    const echoIp = await ip("echo");
    const answer = await runCommand("curl", [
      "-sS",
      "--max-time",
      "10",
      `http://${echoIp}:${ECHO_PORT}/cgi-bin/ip`,
    ]);
    return answer.code === 0
      ? { done: true, value: peerAddress(answer.stdout) }
      : { done: false, state: `failing at ${echoIp}: ${answer.stderr.trim()}` };
  });
  if (fromHost !== "192.168.234.1") {
    throw new Error(
      `the pod saw the host as ${JSON.stringify(fromHost)}; expected 192.168.234.1, no NAT`,
    );
  }
  notes.push(`host → pod on worker0: seen as ${fromHost}`);
  // The client's address is read after its request: the API may lag behind its new sandbox too.
  const fromPod = await waitFor(POLLING, "pod client reaching pod echo", 300_000, async () => {
    const echoIp = await ip("echo");
    let seen: string;
    try {
      seen = peerAddress(
        await cluster.kubectl([
          "exec",
          "client",
          "--",
          "/bin/busybox",
          "wget",
          "-qO-",
          `http://${echoIp}:${ECHO_PORT}/cgi-bin/ip`,
        ]),
      );
    } catch (err) {
      return { done: false, state: `failing at ${echoIp}: ${(err as Error).message.trim()}` };
    }
    const clientIp = await ip("client");
    return seen === clientIp
      ? { done: true, value: seen }
      : { done: false, state: `seeing the client as ${seen}, not ${clientIp}: NATed` };
  });
  notes.push(
    `pod on control0 → pod on worker0: seen as ${fromPod} (its own address), kubectl exec works`,
  );
  const logs = await cluster.kubectl(["logs", "echo"]);
  if (!logs.includes("cgi-bin/ip")) {
    throw new Error(`kubectl logs echo shows no request:\n${logs.slice(-500)}`);
  }
  notes.push("kubectl logs works");
  return notes.join("; ");
}

/** Every QEMU of the stack, killed at once: what a host crash or reboot does to them. */
async function killVms(stackName: string): Promise<void> {
  await runCommand("pkill", ["-KILL", "-f", `qemu-system-x86_64 -name ${stackName}-`]);
  await new Promise((resolve) => setTimeout(resolve, 2000));
}

async function simulateReboot(stackName: string): Promise<void> {
  await killVms(stackName);
  await runCommand("ip", ["link", "delete", bridgeName(stackName)]);
  await runCommand("nft", ["delete", "table", "ip", natTableName(stackName)]);
  await runCommand("ip", ["route", "flush", "root", "10.200.0.0/16"]);
  await runCommand("pkill", ["-KILL", "-f", `dnsmasq --conf-file=/var/lib/hardway/${stackName}/`]);
}

let eventLogs = 0;

/**
 * `pulumi <args>` with its progress on this run's output; throws unless it succeeds, with the
 * error diagnostics of the run (from its event log), so the phase's verdict names the cause.
 */
const stream = (stack: EngineStack, args: string[], timeoutMs = 5_400_000) => {
  const eventLog = path.join(stack.backendDir, `events-${++eventLogs}.json`);
  const result = stack.pulumi([...args, "--event-log", eventLog], { timeoutMs, inherit: true });
  if (result.status !== 0) {
    const errors = fs.existsSync(eventLog)
      ? errorDiagnostics(fs.readFileSync(eventLog, "utf8"))
      : [];
    throw new Error(
      `pulumi ${args.join(" ")} exited ${result.status} after ${result.seconds.toFixed(0)} s${errors.map((e) => `\n  ${e}`).join("")}`,
    );
  }
  return result;
};

/** Runs every phase for one topology, inside the namespaces. */
export async function runInside(topology: Topology, prepared: Prepared): Promise<boolean> {
  const results: PhaseResult[] = [];
  const stack = newStack(`e2e-${topology.name}`, stackConfig(topology, prepared));
  const cluster = new Cluster(stack, prepared.mirror);
  log(
    `stack ${stack.name}, topology ${topology.name}: ${topology.controlPlanes} control plane(s), ${topology.workers} worker(s)`,
  );
  let keep = "";
  try {
    const up = await runPhase(
      results,
      "up (cold)",
      () => {
        const result = stream(stack, ["up", "--yes"]);
        return Promise.resolve({ ok: true, detail: `${result.seconds.toFixed(0)} s` });
      },
      log,
    );
    if (!up) {
      throw new Error("the cold up failed; nothing else can run");
    }
    await runPhase(
      results,
      "checks",
      async () => ({ ok: true, detail: await clusterChecks(cluster, topology) }),
      log,
    );
    if (process.env.HARDWAY_E2E_KEEP === "1") {
      // For debugging the run itself: the cluster stays up in its namespace.
      log(
        `HARDWAY_E2E_KEEP: keeping stack ${stack.name}; kubeconfig and ssh key in ${cluster.dir}`,
      );
      log(`  backend ${stack.backendDir}, config ${stack.configFile}`);
      return false;
    }
    await runPhase(
      results,
      "up (no-op)",
      () => {
        const result = stream(stack, ["up", "--yes"]);
        const changes = lastChanges(stack);
        const changed = Object.entries(changes).filter(([op, n]) => op !== "same" && n > 0);
        return Promise.resolve({
          ok: changed.length === 0,
          detail: `${result.seconds.toFixed(0)} s; ${changed.length === 0 ? `${changes.same} same` : JSON.stringify(changes)}`,
        });
      },
      log,
    );
    if (topology === HA) {
      await runPhase(results, "control node down", () => controlNodeDown(cluster, stack.name), log);
    } else {
      await runPhase(
        results,
        "upgrade",
        async () => {
          const written = crypto.randomBytes(8).toString("hex");
          await cluster.etcdctl(`put /hardway/e2e ${written}`);
          // Only a key that was written is looked for after the reboot.
          keep = written;
          const podUid = (
            await cluster.kubectl(["get", "pod", "echo", "-o", "jsonpath={.metadata.uid}"])
          ).trim();
          // Renewed certificates alone do not restart etcd: it reads them at each handshake.
          const etcdPid = () => cluster.ssh("control0", "systemctl show -p MainPID --value etcd");
          const etcdBefore = (await etcdPid()).trim();
          stack.must([
            "config",
            "set",
            "--config-file",
            stack.configFile,
            "hardway:versions",
            JSON.stringify({ kubernetes: defaultVersions.kubernetes }),
          ]);
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
          const steps = parsePreview(preview.stdout).steps.filter((s) => s.op !== "same");
          // A release file of the new version is a new cache entry on the host: it is fetched,
          // then the old one released (replace, create first). Everything else is an update.
          const isCacheEntry = (urn: string) => /::k8s-artifacts-[^:]+$/.test(urn);
          const cacheEntries = steps.filter((s) => s.op === "replace" && isCacheEntry(s.urn));
          const notUpdates = steps.filter(
            (s) => s.op !== "update" && !(s.op === "replace" && isCacheEntry(s.urn)),
          );
          if (notUpdates.length > 0) {
            throw new Error(
              `the upgrade preview plans more than updates: ${notUpdates.map((s) => `${s.op} ${s.urn.split("::").pop()}`).join(", ")}`,
            );
          }
          const result = stream(stack, ["up", "--yes"]);
          const value = (await cluster.etcdctl("get /hardway/e2e --print-value-only")).trim();
          const uid = (
            await cluster.kubectl(["get", "pod", "echo", "-o", "jsonpath={.metadata.uid}"])
          ).trim();
          const phase = (
            await cluster.kubectl(["get", "pod", "echo", "-o", "jsonpath={.status.phase}"])
          ).trim();
          const versions = (
            await cluster.kubectl([
              "get",
              "nodes",
              "-o",
              "jsonpath={.items[*].status.nodeInfo.kubeletVersion}",
            ])
          ).trim();
          const server = JSON.parse(await cluster.kubectl(["version", "-o", "json"])) as {
            serverVersion: { gitVersion: string };
          };
          const etcdAfter = (await etcdPid()).trim();
          const ok =
            etcdAfter === etcdBefore &&
            value === keep &&
            uid === podUid &&
            phase === "Running" &&
            versions.split(" ").every((v) => v === `v${defaultVersions.kubernetes}`) &&
            server.serverVersion.gitVersion === `v${defaultVersions.kubernetes}`;
          return {
            ok,
            detail: `preview: ${steps.length - cacheEntries.length} updates and ${cacheEntries.length} release files fetched anew, nothing else; up ${result.seconds.toFixed(0)} s; etcd ${etcdAfter === etcdBefore ? `not restarted (pid ${etcdAfter})` : `RESTARTED (pid ${etcdBefore} → ${etcdAfter})`}, key ${value === keep ? "kept" : "LOST"}, pod ${uid === podUid ? `kept (${phase})` : "REPLACED"}, kubelets ${versions}, apiserver ${server.serverVersion.gitVersion}`,
          };
        },
        log,
      );
    }
    await runPhase(
      results,
      "reboot",
      async () => {
        await simulateReboot(stack.name);
        const preview = stack.must(["preview", "--json"], { timeoutMs: 1_800_000 });
        const planned = parsePreview(preview.stdout)
          .steps.filter((s) => s.op !== "same")
          .map((s) => s.urn.split("::").pop());
        const result = stream(stack, ["up", "--yes"]);
        const checks = await clusterChecks(cluster, topology);
        const value =
          keep === "" ? "" : (await cluster.etcdctl("get /hardway/e2e --print-value-only")).trim();
        return {
          ok: value === keep,
          detail: `preview repairs ${planned.join(", ")}; up ${result.seconds.toFixed(0)} s; ${checks}${keep === "" ? "" : `; etcd key ${value === keep ? "kept" : "LOST"}`}`,
        };
      },
      log,
    );
    await runPhase(
      results,
      "stop after controlPlane",
      async () => {
        // A learner going back a chapter: the nodes' steps are removed from live VMs.
        stack.must([
          "config",
          "set",
          "--config-file",
          stack.configFile,
          "hardway:stopAfter",
          "controlPlane",
        ]);
        const result = stream(stack, ["up", "--yes"]);
        const units = await cluster.ssh(
          "worker0",
          "systemctl is-active kubelet containerd || true",
        );
        const files = await cluster.ssh(
          "worker0",
          "ls /usr/local/bin /var/lib/kubelet 2>&1 || true",
        );
        const gone = !/^active$/m.test(units) && !/^(kubelet|containerd)$/m.test(files);
        return {
          ok: gone,
          detail: `${result.seconds.toFixed(0)} s; worker0: ${units.trim().replace(/\n/g, ", ")}`,
        };
      },
      log,
    );
  } catch (err) {
    log((err as Error).message);
  } finally {
    if (process.env.HARDWAY_E2E_KEEP !== "1") {
      await destroyAndCheck(results, topology, stack, cluster);
    }
  }
  if (process.env.HARDWAY_E2E_KEEP === "1") {
    return false;
  }
  const summary = summarize(results);
  for (const line of summary.lines) {
    log(line);
  }
  return summary.ok;
}

/** Destroys the stack (the small one with its VMs killed first) and looks for leftovers. */
async function destroyAndCheck(
  results: PhaseResult[],
  topology: Topology,
  stack: EngineStack,
  cluster: Cluster,
): Promise<void> {
  await runPhase(
    results,
    // The small cluster is destroyed with its VMs killed first (a crashed host); the HA one
    // as it runs.
    topology === SMALL ? "destroy (VMs killed first)" : "destroy",
    async () => {
      if (topology === SMALL) {
        await killVms(stack.name);
      }
      const result = stack.pulumi(["destroy", "--yes"], { timeoutMs: 1_800_000, inherit: true });
      return {
        ok: result.status === 0,
        detail: `${result.seconds.toFixed(0)} s, exit ${result.status}`,
      };
    },
    log,
  );
  await runPhase(
    results,
    "leak check",
    async () => {
      // Inside the mount namespace /var/lib/hardway and /etc/exports are this run's own.
      const state = await readHostState();
      const leaks = findLeaks(state, { stack: stack.name, nodes: cluster.outputs?.nodes ?? {} });
      for (const leak of leaks) {
        log(`leftover ${leak.kind}: ${leak.what}`);
      }
      return {
        ok: leaks.length === 0,
        detail: leaks.length === 0 ? "nothing left" : `${leaks.length} leftovers`,
      };
    },
    log,
  );
  cluster.dispose();
  stack.dispose();
}

/** HA: one control node stops; the API keeps answering through the VIP and etcd keeps quorum. */
async function controlNodeDown(
  cluster: Cluster,
  stackName: string,
): Promise<{ ok: boolean; detail: string }> {
  await runCommand("pkill", ["-KILL", "-f", `qemu-system-x86_64 -name ${stackName}-control1 `]);
  // One /readyz through the VIP a second until ten in a row answer: the failed ones are the
  // failover window (ldirectord's check interval, then IPVS dropping the dead real server).
  const started = Date.now();
  let answered = 0;
  let attempts = 0;
  let failures = 0;
  let lastFailure = 0;
  while (attempts < 90 && answered < 10) {
    attempts++;
    const result = await runCommand(cluster.kubectlBin, [
      "--kubeconfig",
      path.join(cluster.dir, "kubeconfig"),
      "--request-timeout=5s",
      "get",
      "--raw",
      "/readyz",
    ]);
    if (result.code === 0) {
      answered++;
    } else {
      answered = 0;
      failures++;
      lastFailure = (Date.now() - started) / 1000;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const recovered = (Date.now() - started) / 1000;
  const value = crypto.randomBytes(4).toString("hex");
  await cluster.etcdctl(`put /hardway/quorum ${value}`);
  const read = (await cluster.etcdctl("get /hardway/quorum --print-value-only")).trim();
  return {
    ok: answered >= 10 && read === value,
    detail: `after control1 stopped, ${failures} of ${attempts} /readyz through the VIP failed${failures > 0 ? `, the last ${lastFailure.toFixed(1)} s after` : ""}; 10 in a row answered ${recovered.toFixed(0)} s after; etcd writes with 2 of 3 members: ${read === value ? "yes" : "no"}`,
  };
}

// ---- the outer run: namespaces around --inside -------------------------------------------------

export async function runLocal(topologies: readonly Topology[]): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("e2e (local) needs root: it makes network and mount namespaces, taps and VMs");
    return 2;
  }
  const missing = [
    "qemu-system-x86_64",
    "qemu-img",
    "ip",
    "unshare",
    "nft",
    "dnsmasq",
    "debootstrap",
    "gcc",
    "go",
    "ssh",
    "curl",
  ].filter((tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) {
    console.error(
      `e2e (local) cannot run; missing ${missing.join(", ")} (sudo bash .ci/run installs them)`,
    );
    return 2;
  }
  removeAbandonedRuns();
  const prepared = await prepare();
  let ok = true;
  for (const topology of topologies) {
    ok = (await inNamespaces(topology, prepared)) && ok;
  }
  return ok ? 0 : 1;
}

async function inNamespaces(topology: Topology, prepared: Prepared): Promise<boolean> {
  const sandbox = makeSandbox("e2e");
  const { namespace, work } = sandbox;
  // Everything the run writes lives under `work`, its temp files too (TMPDIR): the stack's
  // backend, the kubeconfig, the SSH key. The record lets a later run clean up after this one
  // if it is killed before its own cleanup.
  const tmp = path.join(work, "tmp");
  fs.mkdirSync(tmp);
  const record: RunRecord = {
    namespace,
    runnerPid: process.pid,
    started: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(work, RUN_RECORD), JSON.stringify(record));
  log(`network namespace ${namespace}, state in ${work}`);
  try {
    const args = { topology: topology.name, prepared };
    const [command, ...prefix] = inSandbox(sandbox, "hardway-e2e");
    const child = spawn(
      command,
      [
        ...prefix,
        process.execPath,
        "-r",
        "ts-node/register/transpile-only",
        path.join(E2E_DIR, "e2e.ts"),
        "--inside",
        JSON.stringify(args),
      ],
      {
        stdio: "inherit",
        cwd: path.resolve(E2E_DIR, "../.."),
        env: { ...process.env, TMPDIR: tmp },
      },
    );
    const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
    return code === 0;
  } finally {
    if (process.env.HARDWAY_E2E_KEEP === "1") {
      fs.writeFileSync(path.join(work, RUN_RECORD), JSON.stringify({ ...record, kept: true }));
      log(
        `HARDWAY_E2E_KEEP: network namespace ${namespace} and ${work} are kept; remove them by hand`,
      );
    } else {
      removeSandbox(sandbox);
    }
  }
}

/** Removes what earlier runs, killed before their own cleanup, left: namespace, VMs, files. */
export function removeAbandonedRuns(tmpdir = os.tmpdir()): void {
  const found: FoundRun[] = [];
  for (const entry of fs.readdirSync(tmpdir).filter(isWorkDir)) {
    const work = path.join(tmpdir, entry);
    const file = path.join(work, RUN_RECORD);
    const record = fs.existsSync(file) ? parseRunRecord(fs.readFileSync(file, "utf8")) : undefined;
    if (record !== undefined) {
      found.push({ work, record });
    }
  }
  for (const run of abandonedRuns(found, isAlive)) {
    log(
      `removing what an earlier run left (started ${run.record.started}, runner pid ${run.record.runnerPid} gone): namespace ${run.record.namespace}, ${run.work}`,
    );
    removeSandbox({ namespace: run.record.namespace, work: run.work, createdStateRoot: false });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The entry point inside the namespaces. */
export async function inside(json: string): Promise<number> {
  const args = JSON.parse(json) as { topology: string; prepared: Prepared };
  const topology = [SMALL, HA].find((t) => t.name === args.topology) ?? SMALL;
  return (await runInside(topology, args.prepared)) ? 0 : 1;
}
