/**
 * NodeReleases: the release files one VM installs (the binaries of every step on it), copied from
 * the host's cache before any step runs, each file once. The steps then only install and restart,
 * so an upgrade's ordered part (etcd members, then API servers, … one at a time) does not wait
 * for uploads. KubernetesCluster copies to the workers at once and to the control nodes one
 * after another. Its life cycle, in one place:
 *
 *   create   copy every file that is missing or different on the VM (sha256 compared).
 *   update   the same for the new list (a new version is a new file), then delete the files of
 *            the VM's release cache the list no longer names; a re-created VM gets every file.
 *   delete   remove the VM's release cache; a VM that no longer answers is skipped.
 *
 * Every step on the node waits for it: KubernetesCluster hands the steps the VM's `instance`
 * through this resource's output of the same name.
 */
import type * as Fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { NodeAddress } from "../network/addressPlan";
import { FetchedArtifact } from "./artifactCache";
import { Upload, localDigest, remoteCacheDir, stagedArtifact } from "./nodeStep";
import { shellCommand } from "./shell";
import { SshTarget, remoteDigests, upload, withSsh } from "./ssh";

export interface NodeReleasesArgs {
  readonly node: NodeAddress;
  /** The login user cloud-init creates. */
  readonly user: string;
  /** Secret: the OpenSSH private key the VMs authorise. */
  readonly privateKey: pulumi.Input<string>;
  /** The VM's SSH host key line. */
  readonly hostKey: pulumi.Input<string>;
  /** Changes when the VM is made anew: every file is copied again. */
  readonly instance: pulumi.Input<string>;
  /** The release files the VM's steps install (ArtifactCache.get). */
  readonly artifacts: readonly FetchedArtifact[];
}

/** What the last create or update copied, for the record (not compared by the diff). */
export interface CopyReport {
  readonly files: number;
  readonly bytes: number;
  readonly seconds: number;
}

export interface NodeReleasesState {
  readonly node: string;
  readonly host: string;
  readonly user: string;
  readonly privateKey: string;
  readonly hostKey: string;
  readonly instance: string;
  readonly files: readonly Upload[];
  readonly copied?: CopyReport;
}

/** The inputs a diff compares: everything but the copy report. Pure. */
export function releasesInputs(state: NodeReleasesState): Omit<NodeReleasesState, "copied"> {
  return {
    node: state.node,
    host: state.host,
    user: state.user,
    privateKey: state.privateKey,
    hostKey: state.hostKey,
    instance: state.instance,
    files: state.files,
  };
}

/** The files under the cache directory that the list no longer names. Pure. */
export function staleFiles(present: readonly string[], wanted: readonly Upload[]): string[] {
  const keep = new Set(wanted.map((f) => f.remotePath));
  return present.filter((p) => p !== "" && !keep.has(p)).sort();
}

function sshTarget(state: NodeReleasesState): SshTarget {
  return {
    host: state.host,
    user: state.user,
    privateKey: state.privateKey,
    hostKey: state.hostKey,
  };
}

async function copyAll(state: NodeReleasesState): Promise<NodeReleasesState> {
  /* eslint-disable-next-line @typescript-eslint/no-require-imports -- runs in the provider */
  const nodeFs = require("node:fs") as typeof Fs;
  const started = Date.now();
  let files = 0;
  let bytes = 0;
  await withSsh(
    sshTarget(state),
    async (session) => {
      const present = await remoteDigests(
        session,
        state.files.map((f) => f.remotePath),
      );
      for (const file of state.files) {
        if (present.get(file.remotePath) !== localDigest(file.localPath)) {
          await upload(session, file.remotePath, { file: file.localPath });
          files++;
          bytes += nodeFs.statSync(file.localPath).size;
        }
      }
      const cache = remoteCacheDir(state.user);
      const listed = await session.check(
        `${shellCommand(["find", cache, "-type", "f"])} 2>/dev/null || true`,
      );
      const stale = staleFiles(listed.split("\n"), state.files);
      if (stale.length > 0) {
        await session.check(shellCommand(["rm", "-f", "--", ...stale]));
      }
    },
    // A VM that was just (re)booted may take a while to answer.
    { attempts: 24, retrySeconds: 5 },
  );
  const copied = { files, bytes, seconds: (Date.now() - started) / 1000 };
  console.error(copyLine(state.node, copied));
  return { ...state, copied };
}

/** What a copy reports as it ends, e.g. "releases on control1: 7 files, 512 MB in 717 s". Pure. */
export function copyLine(node: string, copied: CopyReport): string {
  if (copied.files === 0) {
    return `releases on ${node}: every file already there (${Math.round(copied.seconds)} s)`;
  }
  const mb = Math.round(copied.bytes / 1e6);
  return `releases on ${node}: ${copied.files} file${copied.files === 1 ? "" : "s"}, ${mb} MB in ${Math.round(copied.seconds)} s`;
}

export const nodeReleasesProvider: pulumi.dynamic.ResourceProvider<
  NodeReleasesState,
  NodeReleasesState
> = {
  async create(inputs) {
    return { id: `releases@${inputs.node}`, outs: await copyAll(inputs) };
  },

  diff(_id, olds, news) {
    const changes = JSON.stringify(releasesInputs(olds)) !== JSON.stringify(releasesInputs(news));
    return Promise.resolve({ changes, replaces: [], deleteBeforeReplace: true });
  },

  async update(_id, _olds, news) {
    return { outs: await copyAll(news) };
  },

  async delete(_id, olds) {
    try {
      await withSsh(
        sshTarget(olds),
        (session) => session.check(shellCommand(["rm", "-rf", "--", remoteCacheDir(olds.user)])),
        { attempts: 3, retrySeconds: 5 },
      );
    } catch (err) {
      if ((err as { unreachable?: boolean }).unreachable) {
        // Stopped or destroyed: the files went, or go, with the VM's disk.
        return;
      }
      throw err;
    }
  },
};

export class NodeReleases extends pulumi.dynamic.Resource {
  /** The VM's instance, once its release files are there: steps take it as theirs. */
  declare readonly instance: pulumi.Output<string>;
  /** What the last create or update copied. */
  declare readonly copied: pulumi.Output<CopyReport>;

  constructor(name: string, args: NodeReleasesArgs, opts?: pulumi.CustomResourceOptions) {
    const inputs: { [K in keyof NodeReleasesState]: pulumi.Input<NodeReleasesState[K]> } = {
      node: args.node.name,
      host: args.node.ip,
      user: args.user,
      privateKey: pulumi.secret(args.privateKey),
      hostKey: pulumi.output(args.hostKey).apply((k) => k.trim()),
      instance: args.instance,
      // Through the fetches' inputs: the copy waits for each download, and a preview shows it
      // changing exactly when another file replaces the old one.
      files: pulumi.all(
        args.artifacts.map((f) =>
          f.fetch.args.apply(() => {
            const staged = stagedArtifact(f, args.user);
            return { localPath: staged.localPath, remotePath: staged.remotePath };
          }),
        ),
      ),
      copied: undefined,
    };
    super(
      nodeReleasesProvider,
      name,
      inputs,
      { ...opts, additionalSecretOutputs: ["privateKey"] },
      "cluster",
      "NodeReleases",
    );
  }
}
