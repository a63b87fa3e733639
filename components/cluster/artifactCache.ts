/**
 * ArtifactCache: every release file downloaded once on the host into a content-addressed cache
 * (assets/artifacts/fetch.sh verifies its sha256), whatever number of VMs install it. VMs never
 * download: steps copy the cached file to them (stageArtifact in nodeStep.ts).
 */
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { local } from "@pulumi/command";
import { Artifact, cachePath, defaultCacheDir, fetchArgs } from "../kubernetes/artifacts";
import { shellCommand } from "./shell";

export const FETCH_SCRIPT = path.resolve(__dirname, "../../assets/artifacts/fetch.sh");

export interface FetchedArtifact {
  readonly artifact: Artifact;
  /** Where fetch.sh puts and prints the verified file. */
  readonly localPath: string;
  readonly fetch: local.Command;
}

export interface ArtifactCacheArgs {
  /** What to fetch: `artifacts(config)`. */
  readonly artifacts: readonly Artifact[];
  /**
   * The host's cache directory.
   * @default `${XDG_CACHE_HOME:-$HOME/.cache}/hardway/artifacts`
   */
  readonly cacheDir?: string;
}

/** What triggers a new fetch (and a new copy to each VM). */
export function artifactTriggers(artifact: Artifact): string[] {
  return [artifact.name, artifact.version, artifact.arch, artifact.url];
}

export class ArtifactCache extends pulumi.ComponentResource {
  readonly cacheDir: string;
  private readonly fetched: Map<string, FetchedArtifact>;

  constructor(name: string, args: ArtifactCacheArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:ArtifactCache", name, {}, opts);
    this.cacheDir = args.cacheDir ?? defaultCacheDir(process.env, os.homedir());
    this.fetched = new Map();
    for (const artifact of args.artifacts) {
      const localPath = cachePath(artifact, this.cacheDir);
      const fetch = new local.Command(
        `${name}-${artifact.name}`,
        {
          create: shellCommand(["bash", FETCH_SCRIPT, ...fetchArgs(artifact, this.cacheDir)]),
          // Only this version's file goes: other stacks' versions live in sibling directories.
          delete: shellCommand(["rm", "-f", "--", localPath, `${localPath}.sha256`]),
          triggers: artifactTriggers(artifact),
        },
        { parent: this },
      );
      this.fetched.set(artifact.name, { artifact, localPath, fetch });
    }
    this.registerOutputs({ cacheDir: this.cacheDir });
  }

  /** The fetched artifact of that name; fails when the configuration does not need it. */
  get(artifactName: string, requester: pulumi.Resource): FetchedArtifact {
    const found = this.fetched.get(artifactName);
    if (found === undefined) {
      throw new pulumi.ResourceError(
        `the artifact "${artifactName}" was not fetched; this configuration only fetches ${[...this.fetched.keys()].join(", ")}`,
        requester,
      );
    }
    return found;
  }
}
