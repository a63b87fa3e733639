/**
 * NodeStep: one installation step (etcd, kube-apiserver, the kubelet, …) on one or more VMs,
 * run over SSH by assets/node/node-step.sh. Its life cycle, in one place:
 *
 *   check    at preview: a step that names its release (etcd, kube-apiserver) refuses an
 *            update that skips a minor or goes back one (kubernetesSupport.ts).
 *   create   on every target at once (nothing of the step runs anywhere yet): put the node
 *            scripts on the VM (the release files are there already: NodeReleases), then
 *            `node-step.sh apply` with the files on stdin, then the readiness check.
 *   update   any change (a file, a flag, a certificate, a version, a re-created VM) runs the
 *            same apply again, in place: nothing is removed first, state directories stay.
 *            Targets are updated one at a time; when apply (re)started a daemon and the step
 *            has a readiness check, the next target waits until it passes, so etcd keeps its
 *            quorum and the API keeps answering. New targets come after the kept ones (a new
 *            etcd member joins a running cluster: etcd-join.sh), and targets that left the
 *            step are removed last, each after its `beforeLeave` (updatePlan).
 *   delete   `node-step.sh remove` on each target: units, files, binaries and state
 *            directories go. A VM that no longer answers (stopped or destroyed: its disk goes
 *            with it) is skipped, so `pulumi destroy` completes from any state.
 *
 * Nothing runs on a VM during a preview. The scripts' text is kept in the state, so a delete
 * runs what the create ran, wherever the checkout has moved since.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { etcdMoveProblem, kubernetesMoveProblem } from "../config/kubernetesSupport";
import { cachePath } from "../kubernetes/artifacts";
import { FetchedArtifact } from "./artifactCache";
import { NodeAddress } from "../network/addressPlan";
import { RemoteFileInput, bundleOutput, fileListProblems } from "./remoteFiles";
import { shellCommand } from "./shell";
import { SshSession, SshTarget, remoteDigests, upload, withSsh } from "./ssh";

export const NODE_ASSETS_DIR = path.resolve(__dirname, "../../assets/node");
export const NODE_SCRIPTS = [
  "node-step.sh",
  "install-files.sh",
  "etcd-health.sh",
  "api-ready.sh",
  "load-images.sh",
] as const;

/** The node scripts, read once from the checkout: file name → text. */
export function nodeScriptTexts(dir: string = NODE_ASSETS_DIR): Record<string, string> {
  return Object.fromEntries(
    NODE_SCRIPTS.map((name) => [name, fs.readFileSync(path.join(dir, name), "utf8")]),
  );
}

/** The first 16 hex digits of the sha256 over the scripts' names and contents. */
export function scriptsHash(scripts: Readonly<Record<string, string>>): string {
  const hash = crypto.createHash("sha256");
  for (const name of Object.keys(scripts).sort()) {
    hash.update(`${name}\0${scripts[name]}\0`);
  }
  return hash.digest("hex").slice(0, 16);
}

/** The SSH user's home on a VM. */
export function remoteHome(user: string): string {
  return user === "root" ? "/root" : `/home/${user}`;
}

/** Where a VM keeps the node scripts of one content hash. */
export function remoteScriptsDir(user: string, hash: string): string {
  return `${remoteHome(user)}/.local/share/hardway/node/${hash}`;
}

/** The release cache on a VM mirrors the host's layout under the SSH user's home. */
export function remoteCacheDir(user: string): string {
  return `${remoteHome(user)}/.cache/hardway/artifacts`;
}

/** How the host reaches every VM. */
export interface NodeConnection {
  /** The login user cloud-init creates. */
  readonly user: string;
  /** Secret: OpenSSH private key the VMs authorise (Pki.ssh.privateKey). */
  readonly privateKey: pulumi.Input<string>;
}

/** One VM a step runs on. */
export interface NodeStepTarget {
  readonly node: NodeAddress;
  /** Files this step installs on this VM; content travels on stdin, as a secret. */
  readonly files: readonly RemoteFileInput[];
  /** The VM's SSH host key line, pinned for every session (Pki.hostKeys). */
  readonly hostKey: pulumi.Input<string>;
  /** Changes when the VM is made anew (VirtualMachine.instance): the step then runs again. */
  readonly instance: pulumi.Input<string>;
}

/** What every step needs to reach the VMs: the login and, per node name, its host. */
export interface ClusterNodes {
  readonly connection: NodeConnection;
  readonly hosts: Readonly<
    Record<
      string,
      { readonly hostKey: pulumi.Input<string>; readonly instance: pulumi.Input<string> }
    >
  >;
  /**
   * The host network every VM is attached to. Only `destroy` deletes it, and with it every VM and
   * its disk, so what a step installed on a VM is not removed one daemon at a time first: each
   * step on a VM is `deletedWith` it. The removals still run when a node leaves a cluster that
   * stays. @default none (every step removes what it installed)
   */
  readonly hostNetwork?: pulumi.Resource;
}

/** The target for one node of the cluster, installing these files. */
export function targetFor(
  nodes: ClusterNodes,
  node: NodeAddress,
  files: readonly RemoteFileInput[],
): NodeStepTarget {
  const host = nodes.hosts[node.name];
  if (host === undefined) {
    throw new Error(`no VM is known for node ${node.name}; every node of the plan needs one`);
  }
  return { node, files, hostKey: host.hostKey, instance: host.instance };
}

export interface NodeStepArgs {
  /** The step's name on the node (its manifests), e.g. "etcd", "kubelet". */
  readonly step: string;
  /** The VMs, in the order updates roll over them. */
  readonly targets: readonly NodeStepTarget[];
  /**
   * How the host reaches the VMs, and the host network that takes them all along on `destroy`:
   * the step is `deletedWith` it, so it is undone on a VM only when that node leaves a cluster
   * that stays.
   */
  readonly nodes: ClusterNodes;
  /**
   * Release files whose binaries the step installs (ArtifactCache.get); NodeReleases puts them
   * on the VM before the step runs. @default none
   */
  readonly artifacts?: readonly FetchedArtifact[];
  /**
   * The release the step runs, e.g. Kubernetes 1.37.2: an update to another release is refused
   * at preview when it skips a minor or goes back one. @default none (no check)
   */
  readonly release?: StepRelease;
  /**
   * Instead of node-step.sh, these scripts (argv under the scripts directory) apply and remove
   * the step, with `uploads` put on the VM first.
   * @default node-step.sh with the options below
   */
  readonly command?: {
    readonly apply: readonly string[];
    readonly remove: readonly string[];
    readonly uploads: readonly Upload[];
  };
  /** Units the step enables and (re)starts, in order. @default [] */
  readonly units?: readonly string[];
  /** Units whose first start must not wait (etcd). @default [] */
  readonly startNoBlock?: readonly string[];
  /** Directories the daemon fills, wiped only when the step is destroyed. @default [] */
  readonly stateDirs?: readonly string[];
  /**
   * Files whose change alone restarts nothing: the daemon reads them again by itself (etcd its
   * certificate and key, at every TLS handshake) or never reads them. @default []
   */
  readonly noRestart?: readonly string[];
  /**
   * Files whose change alone reloads the units (`systemctl reload`) instead of restarting them:
   * ldirectord reads its config again and keeps the servers that stay in its table. @default []
   */
  readonly reload?: readonly string[];
  /** Run after the files change (the system CA store). @default none */
  readonly afterFiles?: "update-ca-certificates";
  /**
   * Run (as root, from the scripts directory) on a target after apply started or restarted a
   * daemon, before the next target is touched; must wait and exit 0 once the daemon serves.
   * @default none
   */
  readonly readiness?: readonly string[];
  /** Run (as root) on the first target after every target is applied. @default none */
  readonly finalCheck?: readonly string[];
  /**
   * A create applies the first target alone (its readiness check included), then the others at
   * once, instead of all at once: for a daemon whose first instance sets the cluster up, as
   * kubeadm's init comes before any join. @default false
   */
  readonly firstAlone?: boolean;
  /**
   * Run (as root, from the scripts directory) on a target that leaves the step while the step
   * stays (an update with fewer targets), before the step is removed from it; its failure
   * stops the update. Not run when the whole step goes. @default none
   */
  readonly beforeLeave?: readonly string[];
  /**
   * Seconds one command on a VM may take.
   * @default 1800 (software-emulated VMs are slow)
   */
  readonly timeoutSeconds?: number;
}

interface TargetState {
  readonly node: string;
  readonly host: string;
  readonly hostKey: string;
  readonly instance: string;
  /** sha256 of the file bundle: shows in a diff which VM's files changed. */
  readonly filesSha256: string;
}

/** Which release of which software a step runs. */
export interface StepRelease {
  readonly software: "Kubernetes" | "etcd";
  readonly version: string;
}

/** A host file put on a VM before a step runs (a release file, an image archive). */
export interface Upload {
  readonly localPath: string;
  readonly remotePath: string;
}

/** What the provider keeps in the state; also its inputs. */
export interface NodeStepState {
  readonly step: string;
  readonly user: string;
  readonly privateKey: string;
  readonly scripts: Readonly<Record<string, string>>;
  readonly scriptsHash: string;
  readonly targets: readonly TargetState[];
  /**
   * The targets' node names, in order: known at preview even while `targets` is not (a new
   * VM's host key and instance id are known only once it runs). Absent in older states.
   */
  readonly nodes: readonly string[];
  /** Node name → file bundle. Secret. */
  readonly bundles: Readonly<Record<string, string>>;
  readonly uploads: readonly Upload[];
  /** Run as root from the scripts directory, the target's file bundle on stdin. */
  readonly apply: readonly string[];
  readonly remove: readonly string[];
  readonly readiness: readonly string[];
  readonly finalCheck: readonly string[];
  readonly beforeLeave: readonly string[];
  readonly timeoutSeconds: number;
  /** Set only when true (NodeStepArgs.firstAlone): other steps' states stay as they were. */
  readonly firstAlone?: boolean;
  /** Absent in the state of steps made before releases were recorded. */
  readonly release?: StepRelease;
}

/** A release file's place on the VM and how node-step.sh installs its binaries. */
export interface StagedArtifact extends Upload {
  readonly archive: string;
  readonly binaries: readonly { readonly member: string; readonly installPath: string }[];
}

/** The options of node-step.sh that say what a step installs. */
export interface NodeStepOptions {
  readonly step: string;
  readonly units: readonly string[];
  readonly startNoBlock: readonly string[];
  readonly stateDirs: readonly string[];
  readonly noRestart: readonly string[];
  /** @default [] */
  readonly reload?: readonly string[];
  readonly afterFiles: string;
}

/** The node-step.sh argv for a verb, relative to the scripts directory; no secrets. Pure. */
export function nodeStepArgv(
  verb: "apply" | "remove",
  options: NodeStepOptions,
  staged: readonly StagedArtifact[],
): string[] {
  const binaries = staged.flatMap((s) =>
    s.binaries.flatMap((b) => [
      "--binary",
      s.archive,
      s.remotePath,
      b.member === "" ? "-" : b.member,
      b.installPath,
    ]),
  );
  return [
    "bash",
    "node-step.sh",
    verb,
    "--step",
    options.step,
    ...(verb === "apply" ? binaries : []),
    ...options.units.flatMap((u) => ["--unit", u]),
    ...(verb === "apply" ? options.startNoBlock.flatMap((u) => ["--start-no-block", u]) : []),
    ...(verb === "apply" ? options.noRestart.flatMap((f) => ["--no-restart", f]) : []),
    ...(verb === "apply" ? (options.reload ?? []).flatMap((f) => ["--reload", f]) : []),
    ...(verb === "remove" ? options.stateDirs.flatMap((d) => ["--state-dir", d]) : []),
    ...(options.afterFiles ? ["--after-files", options.afterFiles] : []),
  ];
}

/** `cd <scripts dir> && sudo <argv>`: how every step command runs on a VM. */
export function asRootIn(dir: string, argv: readonly string[]): string {
  return `cd ${shellCommand([dir])} && ${shellCommand(["sudo", ...argv])}`;
}

function sshTarget(state: NodeStepState, target: TargetState): SshTarget {
  return {
    host: target.host,
    user: state.user,
    privateKey: state.privateKey,
    hostKey: target.hostKey,
  };
}

/** The recorded digest fetch.sh wrote beside a cached release file, or a fresh one. */
export function localDigest(file: string): string {
  /* eslint-disable @typescript-eslint/no-require-imports -- runs in the provider (see ssh.ts) */
  const nodeFs = require("node:fs") as typeof fs;
  const nodeCrypto = require("node:crypto") as typeof crypto;
  /* eslint-enable @typescript-eslint/no-require-imports */
  if (!nodeFs.existsSync(file)) {
    throw new Error(`${file} is not in the host's release cache; \`pulumi up\` fetches it first`);
  }
  const recorded = `${file}.sha256`;
  if (nodeFs.existsSync(recorded)) {
    return nodeFs.readFileSync(recorded, "utf8").trim();
  }
  return nodeCrypto.createHash("sha256").update(nodeFs.readFileSync(file)).digest("hex");
}

/** Puts the scripts and release files on the VM, copying only what is missing or different. */
async function stage(session: SshSession, state: NodeStepState): Promise<void> {
  /* eslint-disable-next-line @typescript-eslint/no-require-imports -- runs in the provider */
  const nodeCrypto = require("node:crypto") as typeof crypto;
  const dir = remoteScriptsDir(state.user, state.scriptsHash);
  const wanted = [
    ...Object.entries(state.scripts).map(([name, text]) => ({
      remote: `${dir}/${name}`,
      digest: nodeCrypto.createHash("sha256").update(text).digest("hex"),
      input: { text },
    })),
    ...state.uploads.map((u) => ({
      remote: u.remotePath,
      digest: localDigest(u.localPath),
      input: { file: u.localPath },
    })),
  ];
  const present = await remoteDigests(
    session,
    wanted.map((w) => w.remote),
  );
  for (const file of wanted) {
    if (present.get(file.remote) !== file.digest) {
      await upload(session, file.remote, file.input);
    }
  }
}

async function applyTarget(state: NodeStepState, target: TargetState): Promise<void> {
  await withSsh(
    sshTarget(state, target),
    async (session) => {
      const started = Date.now();
      await stage(session, state);
      const dir = remoteScriptsDir(state.user, state.scriptsHash);
      const output = await session.check(
        asRootIn(dir, state.apply),
        { text: state.bundles[target.node] ?? "" },
        state.timeoutSeconds,
      );
      const applied = Date.now();
      let readySeconds: number | undefined;
      if (state.readiness.length > 0 && startedOrRestarted(output)) {
        await session.check(asRootIn(dir, state.readiness), undefined, state.timeoutSeconds);
        readySeconds = (Date.now() - applied) / 1000;
      }
      // Progress a rolling update can be followed by: one line per node, as each is done.
      console.error(
        applyReport(state.step, target.node, output, (applied - started) / 1000, readySeconds),
      );
    },
    // A VM that was just (re)booted may take a while to answer.
    { attempts: 24, retrySeconds: 5 },
  );
}

/** Whether node-step.sh's output says it started or restarted a unit. Pure. */
export function startedOrRestarted(output: string): boolean {
  return /^hardway-step: (re)?started /m.test(output);
}

/**
 * The line one target's apply reports: what node-step.sh did to each unit and how long the apply
 * and the readiness check after it took, e.g. "etcd on control1: restarted etcd.service in 41 s, ready
 * 35 s later". Pure.
 */
export function applyReport(
  step: string,
  node: string,
  output: string,
  applySeconds: number,
  readySeconds?: number,
): string {
  const done = [...output.matchAll(/^hardway-step: (restarted|started|reloaded) (\S+)$/gm)].map(
    (m) => `${m[1]} ${m[2]}`,
  );
  const what = done.length > 0 ? done.join(", ") : "nothing (re)started";
  const ready = readySeconds === undefined ? "" : `, ready ${Math.round(readySeconds)} s later`;
  return `${step} on ${node}: ${what} in ${Math.round(applySeconds)} s${ready}`;
}

/**
 * Why a step cannot move from its recorded release to the new one, or undefined (also when
 * either is not recorded, or the software differs: another step). Pure.
 */
export function releaseMoveProblem(
  from: StepRelease | undefined,
  to: StepRelease | undefined,
): string | undefined {
  if (from === undefined || to === undefined || from.software !== to.software) {
    return undefined;
  }
  return to.software === "etcd"
    ? etcdMoveProblem(from.version, to.version)
    : kubernetesMoveProblem(from.version, to.version);
}

async function removeTarget(
  state: NodeStepState,
  target: TargetState,
  leaving = false,
): Promise<void> {
  try {
    await withSsh(
      sshTarget(state, target),
      async (session) => {
        // Removal needs the scripts only, not the uploads.
        await stage(session, { ...state, uploads: [] });
        const dir = remoteScriptsDir(state.user, state.scriptsHash);
        // States recorded before the option existed have none.
        const beforeLeave = state.beforeLeave ?? [];
        if (leaving && beforeLeave.length > 0) {
          await session.check(asRootIn(dir, beforeLeave), undefined, state.timeoutSeconds);
        }
        await session.check(
          asRootIn(remoteScriptsDir(state.user, state.scriptsHash), state.remove),
          undefined,
          state.timeoutSeconds,
        );
      },
      { attempts: 3, retrySeconds: 5 },
    );
  } catch (err) {
    if ((err as { unreachable?: boolean }).unreachable) {
      // Stopped or destroyed: nothing of the step can outlive the VM's disk.
      console.error(`${state.step} on ${target.node}: VM unreachable, nothing to remove`);
      return;
    }
    throw err;
  }
}

/**
 * How a create goes over its targets: `parallel` all at once, `first-alone` the first target,
 * then the others at once (a step whose first daemon sets the cluster up). An update goes one
 * target at a time: updatePlan.
 */
export type TargetOrder = "parallel" | "first-alone";

/**
 * Runs `body` on every target in `order`, waiting for every target of a parallel part and failing
 * with every target's error.
 */
export async function forEachTarget<T>(
  targets: readonly T[],
  order: TargetOrder,
  body: (target: T) => Promise<void>,
): Promise<void> {
  if (order === "first-alone" && targets.length > 1) {
    await body(targets[0]);
    return forEachTarget(targets.slice(1), "parallel", body);
  }
  const settled = await Promise.allSettled(targets.map(body));
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed.length > 0) {
    throw new Error(failed.map((f) => (f.reason as Error).message).join("\n"));
  }
}

async function applyAll(state: NodeStepState, order: TargetOrder): Promise<void> {
  await forEachTarget(state.targets, order, (target) => applyTarget(state, target));
  if (state.finalCheck.length > 0 && state.targets.length > 0) {
    await finalCheck(state);
  }
}

/** The step's check of all its targets together (etcd: every member healthy), on the first. */
async function finalCheck(state: NodeStepState): Promise<void> {
  await withSsh(sshTarget(state, state.targets[0]), async (session) => {
    const dir = remoteScriptsDir(state.user, state.scriptsHash);
    await session.check(asRootIn(dir, state.finalCheck), undefined, state.timeoutSeconds);
  });
}

/** One thing an update does on a target, or the step's final check. */
export type UpdateAction =
  | { readonly kind: "apply"; readonly node: string }
  | { readonly kind: "leave"; readonly node: string }
  | { readonly kind: "final-check" };

/**
 * What an update does, in order. Pure. Every target of the new state is applied one at a time
 * (kept ones first, in their order, then new ones: an etcd member joins as a learner and votes
 * once it has caught up, one at a time); then the targets that left the step are removed, each
 * after its `beforeLeave` (an etcd member leaves the cluster while it still runs). Leaving last
 * keeps what stays serving while it changes: when three API servers become one, the two that go
 * still answer while the one that stays restarts with its new certificate and flags. The final
 * check runs once the step has its new targets only.
 */
export function updatePlan(
  olds: { readonly targets: readonly Pick<TargetState, "node">[] },
  news: {
    readonly targets: readonly Pick<TargetState, "node">[];
    readonly finalCheck: readonly string[];
  },
): UpdateAction[] {
  const before = new Set(olds.targets.map((t) => t.node));
  const after = new Set(news.targets.map((t) => t.node));
  const nodes = news.targets.map((t) => t.node);
  return [
    ...[...nodes.filter((n) => before.has(n)), ...nodes.filter((n) => !before.has(n))].map(
      (node): UpdateAction => ({ kind: "apply", node }),
    ),
    ...olds.targets
      .filter((t) => !after.has(t.node))
      .map((t): UpdateAction => ({ kind: "leave", node: t.node })),
    ...(news.finalCheck.length > 0 && nodes.length > 0 ? [{ kind: "final-check" } as const] : []),
  ];
}

/** Inputs whose change means another step, not a new version of this one. */
const REPLACE_KEYS = ["step"] as const;

export const nodeStepProvider: pulumi.dynamic.ResourceProvider<NodeStepState, NodeStepState> = {
  check(olds, news) {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    const release = releaseMoveProblem(olds?.release, news.release);
    if (release !== undefined) {
      failures.push({ property: "release", reason: release });
    }
    return Promise.resolve(failures.length === 0 ? { inputs: news } : { inputs: news, failures });
  },

  async create(inputs) {
    const id = `${inputs.step}@${inputs.targets.map((t) => t.node).join(",")}`;
    try {
      await applyAll(inputs, inputs.firstAlone === true ? "first-alone" : "parallel");
    } catch (err) {
      // Keep what is half installed in the state, so `up` finishes it and `destroy` removes it.
      throw Object.assign(new Error((err as Error).message), {
        id,
        properties: inputs,
        reasons: [(err as Error).message],
      });
    }
    return { id, outs: inputs };
  },

  diff(_id, olds, news) {
    const replaces = REPLACE_KEYS.filter((k) => olds[k] !== news[k]);
    const changed = JSON.stringify(olds) !== JSON.stringify(news);
    return Promise.resolve({ changes: changed, replaces, deleteBeforeReplace: true });
  },

  async update(_id, olds, news) {
    const targetOf = (state: NodeStepState, node: string) =>
      state.targets.find((t) => t.node === node) as TargetState;
    for (const action of updatePlan(olds, news)) {
      if (action.kind === "apply") {
        await applyTarget(news, targetOf(news, action.node));
      } else if (action.kind === "leave") {
        await removeTarget(olds, targetOf(olds, action.node), true);
      } else {
        await finalCheck(news);
      }
    }
    return { outs: news };
  },

  async delete(_id, olds) {
    for (const target of [...olds.targets].reverse()) {
      await removeTarget(olds, target);
    }
  },
};

/** Where a fetched release file is on the host and where it goes on the VM. Pure. */
export function stagedArtifact(
  fetched: Pick<FetchedArtifact, "artifact" | "localPath">,
  user: string,
): StagedArtifact {
  const a = fetched.artifact;
  return {
    localPath: fetched.localPath,
    remotePath: cachePath(a, remoteCacheDir(user)),
    archive: a.archive,
    binaries: a.binaries.map((b) => ({ member: b.member, installPath: b.installPath })),
  };
}

export class NodeStep extends pulumi.dynamic.Resource {
  declare readonly step: pulumi.Output<string>;
  declare readonly targets: pulumi.Output<TargetState[]>;

  constructor(name: string, args: NodeStepArgs, opts?: pulumi.CustomResourceOptions) {
    for (const target of args.targets) {
      const problems = fileListProblems(target.files);
      if (problems.length > 0) {
        throw new Error(`step ${name} on ${target.node.name}: ${problems.join("; ")}`);
      }
    }
    const scripts = nodeScriptTexts();
    const bundles = args.targets.map((t) => bundleOutput(t.files));
    const user = args.nodes.connection.user;
    const options: NodeStepOptions = {
      step: args.step,
      units: [...(args.units ?? [])],
      startNoBlock: [...(args.startNoBlock ?? [])],
      stateDirs: [...(args.stateDirs ?? [])],
      noRestart: [...(args.noRestart ?? [])],
      reload: [...(args.reload ?? [])],
      afterFiles: args.afterFiles ?? "",
    };
    // Through the fetch's inputs: the step waits for the download, and a preview shows it
    // changing exactly when another file replaces the old one.
    const staged = pulumi.all(
      (args.artifacts ?? []).map((f) => f.fetch.args.apply(() => stagedArtifact(f, user))),
    );
    const command = args.command;
    const inputs: { [K in keyof NodeStepState]: pulumi.Input<NodeStepState[K]> } = {
      step: args.step,
      user,
      privateKey: pulumi.secret(args.nodes.connection.privateKey),
      scripts,
      scriptsHash: scriptsHash(scripts),
      nodes: args.targets.map((t) => t.node.name),
      targets: pulumi.all(
        args.targets.map((t, i) =>
          pulumi
            .all([t.hostKey, t.instance, bundles[i].sha256])
            .apply(([hostKey, instance, sha]) => ({
              node: t.node.name,
              host: t.node.ip,
              hostKey: hostKey.trim(),
              instance,
              filesSha256: sha,
            })),
        ),
      ),
      bundles: pulumi.secret(
        pulumi
          .all(bundles.map((b) => b.stdin))
          .apply((stdins) =>
            Object.fromEntries(args.targets.map((t, i) => [t.node.name, stdins[i]])),
          ),
      ),
      // Release files are on the VM already (NodeReleases); a command brings its own files.
      uploads: command ? [...command.uploads] : [],
      apply: command
        ? [...command.apply]
        : staged.apply((list) => nodeStepArgv("apply", options, list)),
      remove: command
        ? [...command.remove]
        : staged.apply((list) => nodeStepArgv("remove", options, list)),
      readiness: [...(args.readiness ?? [])],
      finalCheck: [...(args.finalCheck ?? [])],
      beforeLeave: [...(args.beforeLeave ?? [])],
      timeoutSeconds: args.timeoutSeconds ?? 1800,
      ...(args.release ? { release: args.release } : {}),
      ...(args.firstAlone === true ? { firstAlone: true } : {}),
    };
    super(
      nodeStepProvider,
      name,
      inputs,
      {
        deletedWith: args.nodes.hostNetwork,
        ...opts,
        additionalSecretOutputs: ["privateKey", "bundles"],
      },
      "cluster",
      "NodeStep",
    );
  }
}
