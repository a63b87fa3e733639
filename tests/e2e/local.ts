/**
 * The end-to-end run in local mode: the program itself brings up a real cluster on software-
 * emulated (TCG) VMs, offline, on this machine, with chapter 7's CoreDNS and MetalLB, then lives
 * through a no-op `up`, a worker added and removed, an upgrade, a host reboot and its destruction.
 * Everything it needs is built from Go modules and Debian packages and cached: the Pulumi
 * toolchain (tests/engine/toolchain.sh), the release mirror (build-mirror.sh), a prebaked guest
 * image (build-image.sh), the pod image archives (ociArchives.ts), and the services' images, chart
 * and registry (serviceArtifacts.ts), the registry running inside the run's namespace
 * (registry.ts) as the mirror of every registry the images name.
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
import { defaultVersions } from "../../components/config/defaults";
import { Cni, DEFAULT_CLUSTER_CIDR, Service, parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";
import {
  EngineStack,
  PROJECT_DIR,
  lastChanges,
  newStack,
  parsePreview,
  toolchainEnv,
} from "../engine/engine";
import { inSandbox, makeSandbox, removeSandbox } from "../harness/namespaces";
import { onePathFrom } from "../harness/scriptOutput";
import { Cluster, log } from "./cluster";
import {
  RUN_VALUES as CILIUM_RUN_VALUES,
  buildCiliumImages,
  packageCiliumChart,
} from "./ciliumArtifacts";
import { clusterChecks } from "./clusterChecks";
import { failover, haChecks, recovery, replacement, rollingUpgrade } from "./highAvailability";
import { killVms, simulateReboot } from "./hostFaults";
import { findLeaks, readHostState } from "./leaks";
import { logNodeStates } from "./nodeState";
import { metered } from "./usage";
import { PATCH_FROM, UPGRADE_FROM, buildMirror, cacheRoot } from "./mirror";
import { buildPodImageArchives } from "./ociArchives";
import {
  PhaseResult,
  errorDiagnostics,
  historyLine,
  parseDeadline,
  runPhase,
  runPhaseBefore,
  skipPhase,
  stepSpans,
  summarize,
} from "./phases";
import { REGISTRY_PORT, RunningRegistry, pushImages, startRegistry } from "./registry";
import {
  ImageArchive,
  METALLB_RUN_REASON,
  PROGRAMS,
  RUN_VERSIONS,
  buildProgram,
  buildServiceImages,
  mirroredRegistries,
  packageMetallbChart,
  serviceImages,
} from "./serviceArtifacts";
import { serviceChecks } from "./serviceChecks";
import { FoundRun, RUN_RECORD, RunRecord, abandonedRuns, isWorkDir, parseRunRecord } from "./runs";
import { Added, ScaleRun, addWorker, removeWorker } from "./scaleWorkers";
import { UpgradeRun, minorUpgrade } from "./upgrade";

/** A topology of the run: how many nodes, and what else it proves. */
export interface Topology {
  readonly name: string;
  readonly controlPlanes: 1 | 3;
  readonly workers: number;
  /** Installs the release one minor below the pins and upgrades to them (upgrade.ts). */
  readonly minorUpgrade: boolean;
  /** Installs Kubernetes and etcd a patch below the pins and rolls them up (the HA run). */
  readonly patchUpgrade: boolean;
  /** The chapter 7 services installed and checked. */
  readonly services: readonly Service[];
  /** vCPUs of each control VM. */
  readonly controlCpus: number;
  /** The pod network: the nodes' bridge plugin and kube-proxy, or Cilium (ciliumArtifacts.ts). */
  readonly cni: Cni;
}

/**
 * The services the run installs: CoreDNS and MetalLB. Not the NFS provisioner: neither its chart
 * nor its image is in any module the Go module proxy serves, and this host's kernel has no nfsd.
 */
export const RUN_SERVICES: readonly Service[] = ["coredns", "metallb"];

/** `--no-upgrade`: the pins installed cold, checked, a worker added and removed, rebooted, destroyed. */
export const SMALL: Topology = {
  name: "small",
  controlPlanes: 1,
  workers: 1,
  minorUpgrade: false,
  patchUpgrade: false,
  services: RUN_SERVICES,
  controlCpus: 2,
  cni: "bridge",
};
/**
 * CI's run: the small cluster on the release one minor below, a worker added and removed,
 * upgraded to the pins, then rebooted and destroyed. Measured here the upgrade phase took
 * 940–1266 s (its `up` 850–1129 s: 173–216 s copying 570 MB of release files to the control
 * node, 770–1015 s for the ordered steps); the whole run 55 minutes.
 */
export const UPGRADE: Topology = {
  name: "upgrade",
  controlPlanes: 1,
  workers: 1,
  minorUpgrade: true,
  patchUpgrade: false,
  services: RUN_SERVICES,
  controlCpus: 2,
  cni: "bridge",
};
/**
 * Three control planes behind the VIP and nothing else: two host cores carry four emulated vCPUs
 * (the gateway's and one per control node), not nine. Measured with 2 vCPUs per control node and
 * a worker, etcd's reads took 0.5-1.2 s and the API servers never finished their post-start hooks.
 * With no workers the control nodes take the pods; no chapter 7 services, which the small runs
 * check.
 */
export const HA: Topology = {
  name: "ha",
  controlPlanes: 3,
  workers: 0,
  minorUpgrade: false,
  patchUpgrade: true,
  services: [],
  controlCpus: 1,
  cni: "bridge",
};
/**
 * `--cilium`: the small cluster with Cilium as its CNI and kube-proxy replacement instead of the
 * bridge plugin and kube-proxy, its images and chart built from the Cilium module
 * (ciliumArtifacts.ts); cold `up`, checks, services, no-op `up`, destroy. Not part of CI.
 */
export const CILIUM: Topology = {
  ...SMALL,
  name: "cilium",
  cni: "cilium",
};

interface Prepared {
  readonly mirror: string;
  readonly image: string;
  readonly archives: { readonly pause: string; readonly echo: string };
  readonly services: {
    readonly images: readonly ImageArchive[];
    /** The directory of packaged charts (hardway:chartMirror). */
    readonly charts: string;
    readonly registry: string;
    readonly crane: string;
  };
}

const NOT_RUN =
  "NFS provisioner not installed (no chart or image from the Go module proxy, no nfsd in this kernel)";

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
const BUILD_CILIUM_ROOTFS_SCRIPT = path.join(E2E_DIR, "build-cilium-rootfs.sh");

/** Builds (or finds cached) everything the run needs; each part timed. */
export async function prepare(topologies: readonly Topology[]): Promise<Prepared> {
  await timed("toolchain", () => toolchainEnv());
  const mirror = await timed("release mirror", () =>
    buildMirror({
      minorUpgrade: topologies.some((t) => t.minorUpgrade),
      patchUpgrade: topologies.some((t) => t.patchUpgrade),
    }),
  );
  const image = await timed("guest image", () =>
    onePathFrom(
      BUILD_IMAGE_SCRIPT,
      scriptValue(BUILD_IMAGE_SCRIPT, ["--out", path.join(cacheRoot(), "e2e", "image")]),
    ),
  );
  const archives = await timed("pod image archives", () =>
    buildPodImageArchives(path.join(cacheRoot(), "e2e", "pod-images"), defaultVersions.kubernetes),
  );
  const cache = path.join(cacheRoot(), "e2e");
  const services = await timed("service images, chart and registry", () => ({
    images: buildServiceImages(cache, log),
    charts: packageMetallbChart(path.join(cache, "charts")),
    registry: buildProgram(cache, PROGRAMS.registry, log),
    crane: buildProgram(cache, PROGRAMS.crane, log),
  }));
  const cilium = topologies.some((t) => t.cni === "cilium")
    ? await timed("Cilium's images and chart", () => {
        const rootfs = onePathFrom(
          BUILD_CILIUM_ROOTFS_SCRIPT,
          scriptValue(BUILD_CILIUM_ROOTFS_SCRIPT, ["--out", path.join(cache, "cilium")]),
        );
        packageCiliumChart(path.join(cache, "charts"));
        return buildCiliumImages(cache, rootfs, log);
      })
    : [];
  return {
    mirror,
    image,
    archives,
    services: {
      ...services,
      images: [...services.images, ...cilium],
      charts: path.dirname(services.charts),
    },
  };
}

/** The host's address on the run's VM network, where the nodes reach the registry. */
const HOST_IP = addressPlan(parseConfig({}, { os: "linux", cpu: "x64" })).hostIp;

/** The throwaway stack's configuration for a topology. */
export function stackConfig(topology: Topology, prepared: Prepared): Record<string, string> {
  return {
    "hardway:arch": "amd64",
    "hardway:accelerator": "tcg",
    "hardway:controlPlanes": String(topology.controlPlanes),
    "hardway:workers": String(topology.workers),
    "hardway:cni": topology.cni,
    ...(topology.cni === "cilium"
      ? { "hardway:chartValues": JSON.stringify({ cilium: CILIUM_RUN_VALUES }) }
      : {}),
    "hardway:services": JSON.stringify(topology.services),
    "hardway:chartMirror": prepared.services.charts,
    "hardway:registryMirrors": JSON.stringify(
      Object.fromEntries(
        mirroredRegistries(serviceImages()).map((registry) => [
          registry,
          { endpoints: [`http://${HOST_IP}:${REGISTRY_PORT}`] },
        ]),
      ),
    ),
    "hardway:releaseMirror": prepared.mirror,
    "hardway:podImages": JSON.stringify([prepared.archives.pause, prepared.archives.echo]),
    "hardway:image": JSON.stringify({
      path: path.join(prepared.image, "disk.raw"),
      prebaked: true,
      user: "hardway",
      kernel: path.join(prepared.image, "vmlinuz"),
      initrd: path.join(prepared.image, "initrd.img"),
    }),
    // One minor below the pins (the minor upgrade moves it to them), and the run's MetalLB.
    "hardway:versions": JSON.stringify({
      ...(topology.minorUpgrade ? UPGRADE_FROM : {}),
      ...(topology.patchUpgrade ? PATCH_FROM : {}),
      ...RUN_VERSIONS,
    }),
    "hardway:vm": JSON.stringify({
      gateway: { cpus: 1, memory: 512, disk: 8 },
      control: { cpus: topology.controlCpus, memory: 2048, disk: 12 },
      worker: { cpus: 2, memory: 1536, disk: 12 },
    }),
  };
}

// ---- inside the namespaces ----------------------------------------------------------------------

let eventLogs = 0;

/** The error diagnostics of a run, from its event log, for the phase's verdict. */
function runErrors(eventLog: string): string[] {
  return fs.existsSync(eventLog) ? errorDiagnostics(fs.readFileSync(eventLog, "utf8")) : [];
}

/**
 * `pulumi <args>` with its progress on this run's output; throws unless it succeeds, with the
 * error diagnostics of the run (from its event log), so the phase's verdict names the cause.
 */
const stream = (stack: EngineStack, args: string[], timeoutMs = 5_400_000) => {
  const eventLog = path.join(stack.backendDir, `events-${++eventLogs}.json`);
  const result = stack.pulumi([...args, "--event-log", eventLog], { timeoutMs, inherit: true });
  if (result.status !== 0) {
    throw new Error(
      `pulumi ${args.join(" ")} exited ${result.status} after ${result.seconds.toFixed(0)} s${runErrors(
        eventLog,
      )
        .map((e) => `\n  ${e}`)
        .join("")}`,
    );
  }
  return result;
};

/** `pulumi up` without blocking, its steps' times from its event log. */
async function upInBackground(stack: EngineStack): Promise<UpgradeRun> {
  const eventLog = path.join(stack.backendDir, `events-${++eventLogs}.json`);
  const result = await stack.pulumiAsync(["up", "--yes", "--event-log", eventLog], {
    timeoutMs: 5_400_000,
    inherit: true,
  });
  const events = fs.existsSync(eventLog) ? fs.readFileSync(eventLog, "utf8") : "";
  return {
    status: result.status,
    seconds: result.seconds,
    spans: stepSpans(events),
    errors: events === "" ? [] : errorDiagnostics(events),
  };
}

/**
 * What the phases a deadline may leave out can take on a slow day here (two cores under TCG,
 * where the same run varies by ±20 minutes), rounded up from measured runs: a worker added 546 s
 * and 600 s, removed 387 s (and 2635 s in a run whose only API server answered nothing for 15
 * minutes), the minor upgrade 2481 s, the reboot 300-600 s.
 */
const EXPECTED_MS = {
  addWorker: 900_000,
  removeWorker: 900_000,
  minorUpgrade: 3_600_000,
  reboot: 900_000,
};
/** Kept before the deadline for destroy (115 s measured, the VMs killed first) and the leak check. */
const DESTROY_RESERVE_MS = 300_000;

/** Runs every phase for one topology, inside the namespaces. */
export async function runInside(topology: Topology, prepared: Prepared): Promise<boolean> {
  const results: PhaseResult[] = [];
  // CI's end: the phases that would not end before it are left out, saying so, and the run
  // still destroys its cluster and checks for leftovers instead of being killed in a phase.
  const deadline = parseDeadline(process.env.HARDWAY_E2E_DEADLINE, DESTROY_RESERVE_MS);
  if (deadline !== undefined) {
    log(`deadline ${new Date(deadline.atMs).toISOString()} (HARDWAY_E2E_DEADLINE)`);
  }
  const stack = newStack(`e2e-${topology.name}`, stackConfig(topology, prepared));
  const cluster = new Cluster(stack, prepared.mirror);
  // Each phase, then where the machine's time went during it (usage.ts).
  type Body = () => Promise<{ ok: boolean; detail: string }>;
  const phase = (name: string, body: Body) =>
    runPhase(results, name, metered(name, stack.name, cluster, log, body), log);
  const phaseBefore = (expectedMs: number, name: string, body: Body) =>
    runPhaseBefore(
      deadline,
      expectedMs,
      results,
      name,
      metered(name, stack.name, cluster, log, body),
      log,
    );
  log(
    `stack ${stack.name}, topology ${topology.name}: ${topology.controlPlanes} control plane(s), ${topology.workers} worker(s), services ${topology.services.join(", ") || "none"}${topology.services.includes("metallb") ? `; ${METALLB_RUN_REASON}` : ""}`,
  );
  let registry: RunningRegistry | undefined;
  try {
    registry = await timed("registry started and filled", async () => {
      const started = await startRegistry(
        prepared.services.registry,
        path.join(os.tmpdir(), "registry"),
      );
      pushImages(prepared.services.crane, started, prepared.services.images, os.tmpdir());
      return started;
    });
    const running = registry;
    const services = () =>
      serviceChecks(cluster, {
        images: prepared.services.images.map((i) => i.ref),
        registryLog: running.accessLog,
        notes: [METALLB_RUN_REASON, NOT_RUN],
      });
    const up = await phase("up (cold)", () => {
      const result = stream(stack, ["up", "--yes"]);
      return Promise.resolve({ ok: true, detail: `${result.seconds.toFixed(0)} s` });
    });
    if (!up) {
      throw new Error("the cold up failed; nothing else can run");
    }
    await phase("checks", async () => {
      const checks = await clusterChecks(cluster, topology);
      return {
        ok: true,
        detail: topology.controlPlanes > 1 ? `${checks}; ${await haChecks(cluster)}` : checks,
      };
    });
    if (topology.services.length > 0) {
      await phase("services", async () => ({ ok: true, detail: await services() }));
    }
    if (process.env.HARDWAY_E2E_KEEP === "1") {
      // For debugging the run itself: the cluster stays up in its namespace.
      log(
        `HARDWAY_E2E_KEEP: keeping stack ${stack.name}; kubeconfig and ssh key in ${cluster.dir}`,
      );
      log(`  backend ${stack.backendDir}, config ${stack.configFile}`);
      return false;
    }
    await phase("up (no-op)", () => {
      const result = stream(stack, ["up", "--yes"]);
      const changes = lastChanges(stack);
      const changed = Object.entries(changes).filter(([op, n]) => op !== "same" && n > 0);
      return Promise.resolve({
        ok: changed.length === 0,
        detail: `${result.seconds.toFixed(0)} s; ${changed.length === 0 ? `${changes.same} same` : JSON.stringify(changes)}`,
      });
    });
    if (topology === HA) {
      await haPhases(results, stack, cluster);
    } else if (topology.cni === "cilium") {
      log(
        "the Cilium variant ends here: no worker change, upgrade or reboot (the bridge runs' phases)",
      );
    } else {
      await scalePhases(
        results,
        { cluster, stack, up: () => stream(stack, ["up", "--yes"]) },
        topology,
        phaseBefore,
      );
      if (topology.minorUpgrade) {
        await phaseBefore(EXPECTED_MS.minorUpgrade, "minor upgrade", () =>
          minorUpgrade(cluster, stack, () => upInBackground(stack)),
        );
      }
      await phaseBefore(EXPECTED_MS.reboot, "reboot", async () => {
        const written = crypto.randomBytes(8).toString("hex");
        await cluster.etcdctl(`put /hardway/reboot ${written}`);
        await simulateReboot(stack.name, DEFAULT_CLUSTER_CIDR);
        const preview = stack.must(["preview", "--json"], { timeoutMs: 1_800_000 });
        const planned = parsePreview(preview.stdout)
          .steps.filter((s) => s.op !== "same")
          .map((s) => s.urn.split("::").pop());
        const result = stream(stack, ["up", "--yes"]);
        const checks = await clusterChecks(cluster, topology);
        const served = topology.services.length > 0 ? await services() : "none installed";
        const value = (await cluster.etcdctl("get /hardway/reboot --print-value-only")).trim();
        return {
          ok: value === written,
          detail: `preview repairs ${planned.join(", ")}; up ${result.seconds.toFixed(0)} s; ${checks}; services: ${served}; etcd key ${value === written ? "kept" : "LOST"}`,
        };
      });
    }
  } catch (err) {
    log((err as Error).message);
  } finally {
    if (results.some((r) => !r.ok)) {
      await logNodeStates(cluster, stack.name, log);
    }
    if (process.env.HARDWAY_E2E_KEEP !== "1") {
      await destroyAndCheck(results, topology, stack, cluster);
      registry?.stop();
    }
  }
  if (process.env.HARDWAY_E2E_KEEP === "1") {
    return false;
  }
  const summary = summarize(results);
  for (const line of summary.lines) {
    log(line);
  }
  recordHistory(topology, results);
  return summary.ok;
}

/** Where every local run appends its phases (historyLine), to compare runs of any commit. */
export function historyFile(): string {
  return path.join(cacheRoot(), "e2e", "history.jsonl");
}

function recordHistory(topology: Topology, results: readonly PhaseResult[]): void {
  const head = spawnSync("git", ["rev-parse", "--short", "HEAD"], {
    cwd: PROJECT_DIR,
    encoding: "utf8",
  });
  const commit = head.status === 0 ? head.stdout.trim() : "unknown";
  const file = historyFile();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(
    file,
    `${historyLine({ topology: topology.name, commit, finished: new Date() }, results)}\n`,
  );
  log(`this run's phases were added to ${file}`);
}

/**
 * One worker more, then one fewer (scaleWorkers.ts), on the release the cluster runs: before the
 * upgrade, so the upgrade and the reboot see the topology they were measured with.
 */
async function scalePhases(
  results: PhaseResult[],
  run: ScaleRun,
  topology: Topology,
  phaseBefore: (
    expectedMs: number,
    name: string,
    body: () => Promise<{ ok: boolean; detail: string }>,
  ) => Promise<boolean>,
) {
  let added: Added | undefined;
  const more = `workers ${topology.workers} → ${topology.workers + 1}`;
  const fewer = `workers ${topology.workers + 1} → ${topology.workers}`;
  const grew = await phaseBefore(EXPECTED_MS.addWorker, more, async () => {
    const result = await addWorker(run, topology.workers);
    added = result.added;
    return result;
  });
  if (added !== undefined) {
    const node = added;
    // Left out only when the run is out of time, and then so is everything after it.
    await phaseBefore(EXPECTED_MS.removeWorker, fewer, () =>
      removeWorker(run, topology.workers, node),
    );
  } else if (results.at(-1)?.skipped === true) {
    skipPhase(results, fewer, `not run: ${more} did not run`, log);
  } else if (!grew) {
    throw new Error(
      "adding a worker failed; the later phases expect the topology they started with",
    );
  }
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
    topology !== HA ? "destroy (VMs killed first)" : "destroy",
    async () => {
      if (topology !== HA) {
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

// ---- the outer run: namespaces around --inside -------------------------------------------------

/** Why the local run cannot run on this machine, or undefined when it can. */
function localMissing(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "e2e (local) needs root: it makes network and mount namespaces, taps and VMs";
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
  return missing.length > 0
    ? `e2e (local) cannot run; missing ${missing.join(", ")} (sudo bash .ci/run installs them)`
    : undefined;
}

export async function runLocal(topologies: readonly Topology[]): Promise<number> {
  const missing = localMissing();
  if (missing !== undefined) {
    console.error(missing);
    return 2;
  }
  removeAbandonedRuns();
  const prepared = await prepare(topologies);
  let ok = true;
  for (const topology of topologies) {
    ok = (await inNamespaces(topology, prepared)) && ok;
  }
  return ok ? 0 : 1;
}

/**
 * `npm run e2e -- --prepare`: only the one-time builds of the run (prepare), so CI can make them
 * in the time a cold machine has left and run the cluster itself next time.
 */
export async function prepareLocal(topologies: readonly Topology[]): Promise<number> {
  const missing = localMissing();
  if (missing !== undefined) {
    console.error(missing);
    return 2;
  }
  await prepare(topologies);
  return 0;
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
  const topology = [SMALL, UPGRADE, HA, CILIUM].find((t) => t.name === args.topology) ?? SMALL;
  return (await runInside(topology, args.prepared)) ? 0 : 1;
}

/**
 * Issue 17's phases after the no-op `up`, each on the cluster the one before left: the patch
 * upgrade with its samples first (the longest phase and the one that needs the most of the
 * machine, so a failure shows an hour into the run, not three), then control1 killed (failover)
 * and brought back by `up` (recovery), and control2 re-created with an empty disk (replacement).
 * Steps removed from a live VM are proven by the small run's worker removal (scaleWorkers.ts)
 * and by tests/cluster.
 */
async function haPhases(results: PhaseResult[], stack: EngineStack, cluster: Cluster) {
  const up = () => stream(stack, ["up", "--yes"]);
  await runPhase(
    results,
    "rolling patch upgrade",
    () => rollingUpgrade(cluster, stack, JSON.stringify(RUN_VERSIONS), () => upInBackground(stack)),
    log,
  );
  const down = await runPhase(
    results,
    "failover (control1 killed)",
    () => failover(cluster, stack.name, "control1", "control0"),
    log,
  );
  await runPhase(results, "recovery (up)", () => recovery(cluster, up), log);
  if (!down) {
    log("failover failed: the later phases still run on the recovered cluster");
  }
  await runPhase(
    results,
    "replacement (control2's disk deleted)",
    () => replacement(cluster, stack, "control2", up),
    log,
  );
}
