/**
 * The building blocks every cluster component uses: copy a cached release file to a VM, and run
 * one idempotent step (assets/node/node-step.sh) that installs binaries, files and units and
 * whose `delete` removes them again.
 */
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { cachePath } from "../kubernetes/artifacts";
import { FetchedArtifact, artifactTriggers } from "./artifactCache";
import { NodeTarget, remoteHome } from "./nodeScripts";
import { RemoteFileInput, bundleOutput, fileListProblems } from "./remoteFiles";
import { shellCommand } from "./shell";

/** A release file copied to a VM, ready for node-step.sh to unpack. */
export interface StagedArtifact {
  readonly fetched: FetchedArtifact;
  readonly remotePath: string;
  readonly copy: remote.CopyToRemote;
}

/** The release cache on a VM mirrors the host's layout under the SSH user's home. */
export function remoteCacheDir(user: string): string {
  return `${remoteHome(user)}/.cache/hardway/artifacts`;
}

export function stageArtifact(
  name: string,
  target: NodeTarget,
  fetched: FetchedArtifact,
  parent: pulumi.Resource,
): StagedArtifact {
  const remotePath = cachePath(fetched.artifact, remoteCacheDir(target.user));
  const copy = new remote.CopyToRemote(
    name,
    {
      connection: target.connection,
      // fetch.sh prints the path it was given; the apply makes the copy wait for the download
      // and keeps the source unknown in a preview, before the file exists.
      source: fetched.fetch.stdout.apply(() => new pulumi.asset.FileAsset(fetched.localPath)),
      remotePath,
      triggers: artifactTriggers(fetched.artifact),
    },
    { parent, dependsOn: [...target.ready] },
  );
  return { fetched, remotePath, copy };
}

export interface NodeStepArgs {
  readonly target: NodeTarget;
  /** The step's manifest name on the node, e.g. "etcd", "kubelet". */
  readonly step: string;
  /** @default [] */
  readonly files?: readonly RemoteFileInput[];
  /** Release files whose binaries the step installs. @default [] */
  readonly staged?: readonly StagedArtifact[];
  /** Units the step enables and restarts, in order. @default [] */
  readonly units?: readonly string[];
  /** Directories the daemon fills that `delete` wipes. @default [] */
  readonly stateDirs?: readonly string[];
  /** Run after the files change (the system CA store). @default none */
  readonly afterFiles?: "update-ca-certificates";
  /** Steps on other resources this one must wait for. @default [] */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/** The node-step.sh arguments shared by apply and remove; no secrets, they go on stdin. */
export function nodeStepArgv(
  verb: "apply" | "remove",
  scriptsDir: string,
  args: Pick<NodeStepArgs, "step" | "units" | "stateDirs" | "afterFiles">,
  staged: readonly Pick<StagedArtifact, "fetched" | "remotePath">[],
): string[] {
  const binaries = staged.flatMap((s) =>
    s.fetched.artifact.binaries.flatMap((b) => [
      "--binary",
      s.fetched.artifact.archive,
      s.remotePath,
      b.member === "" ? "-" : b.member,
      b.installPath,
    ]),
  );
  return [
    "sudo",
    "bash",
    `${scriptsDir}/node-step.sh`,
    verb,
    "--step",
    args.step,
    ...(verb === "apply" ? binaries : []),
    ...(args.units ?? []).flatMap((u) => ["--unit", u]),
    ...(verb === "remove" ? (args.stateDirs ?? []).flatMap((d) => ["--state-dir", d]) : []),
    ...(args.afterFiles === undefined ? [] : ["--after-files", args.afterFiles]),
  ];
}

export function nodeStep(
  name: string,
  args: NodeStepArgs,
  parent: pulumi.Resource,
): remote.Command {
  const files = args.files ?? [];
  const problems = fileListProblems(files);
  if (problems.length > 0) {
    throw new pulumi.ResourceError(`step ${name}: ${problems.join("; ")}`, parent);
  }
  const staged = args.staged ?? [];
  const bundle = bundleOutput(files);
  const apply = shellCommand(nodeStepArgv("apply", args.target.scriptsDir, args, staged));
  return new remote.Command(
    name,
    {
      connection: args.target.connection,
      create: apply,
      // Re-running apply converges in place; a replacement would run the old delete after the
      // new create and remove what it had just installed.
      update: apply,
      delete: shellCommand(nodeStepArgv("remove", args.target.scriptsDir, args, staged)),
      stdin: bundle.stdin,
      triggers: [bundle.sha256, ...staged.flatMap((s) => artifactTriggers(s.fetched.artifact))],
      addPreviousOutputInEnv: false,
    },
    {
      parent,
      dependsOn: [...args.target.ready, ...staged.map((s) => s.copy), ...(args.dependsOn ?? [])],
      deleteBeforeReplace: true,
    },
  );
}

/** Copies the fetched artifacts to the node, as `${prefix}-copy-${artifact}`. */
export function stageAll(
  prefix: string,
  target: NodeTarget,
  fetched: readonly FetchedArtifact[],
  parent: pulumi.Resource,
): StagedArtifact[] {
  return fetched.map((f) => stageArtifact(`${prefix}-copy-${f.artifact.name}`, target, f, parent));
}
