/**
 * ArtifactCache: every release file downloaded once on the host into a cache shared by all
 * stacks (assets/artifacts/fetch.sh verifies its sha256), whatever number of VMs install it.
 * VMs never download: NodeStep copies the cached file to them.
 *
 * Each file is an EnsuredScript held by this stack, made when a step first asks for it (a stack
 * that stops after the control plane fetches no kubelet): a preview notices a file that vanished
 * (a cleared ~/.cache) and `up` fetches it again; destroying the stack drops only its own hold,
 * so another stack's VMs keep theirs.
 */
import * as os from "node:os";
import * as pulumi from "@pulumi/pulumi";
import { EnsuredScript } from "../host/ensured";
import { Artifact, cachePath, defaultCacheDir, fetchArgs } from "../kubernetes/artifacts";

export const FETCH_SCRIPT = "artifacts/fetch.sh";

export interface FetchedArtifact {
  readonly artifact: Artifact;
  /** Where the verified file is, known before it is fetched. */
  readonly localPath: string;
  readonly fetch: EnsuredScript;
}

export interface ArtifactCacheArgs {
  /** What to fetch: `artifacts(config)`. */
  readonly artifacts: readonly Artifact[];
  /** Who holds the files, one name per stack, e.g. `hardway-dev`. */
  readonly holder: string;
  /**
   * The host's cache directory.
   * @default `${XDG_CACHE_HOME:-$HOME/.cache}/hardway/artifacts`
   */
  readonly cacheDir?: string;
}

export class ArtifactCache extends pulumi.ComponentResource {
  readonly cacheDir: string;
  private readonly available: ReadonlyMap<string, Artifact>;
  private readonly fetched = new Map<string, FetchedArtifact>();

  constructor(
    private readonly name: string,
    private readonly args: ArtifactCacheArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hardway:cluster:ArtifactCache", name, {}, opts);
    this.cacheDir = args.cacheDir ?? defaultCacheDir(process.env, os.homedir());
    this.available = new Map(args.artifacts.map((a) => [a.name, a]));
    this.registerOutputs({ cacheDir: this.cacheDir });
  }

  /** The artifacts of those names, fetched; fails when the configuration does not list one. */
  get(names: readonly string[], requester: pulumi.Resource): FetchedArtifact[] {
    return names.map((artifactName) => {
      const known = this.fetched.get(artifactName);
      if (known !== undefined) {
        return known;
      }
      const artifact = this.available.get(artifactName);
      if (artifact === undefined) {
        throw new pulumi.ResourceError(
          `the artifact "${artifactName}" is not one this configuration installs; it has ${[...this.available.keys()].join(", ")}`,
          requester,
        );
      }
      const fetch = new EnsuredScript(
        `${this.name}-${artifact.name}`,
        {
          script: FETCH_SCRIPT,
          args: fetchArgs(artifact, this.cacheDir, this.args.holder),
          // Kubernetes binaries are 50-100 MB; slow links need time.
          timeoutSeconds: 1800,
        },
        // Another version is another file; the old one is released only after the new is in.
        { parent: this, deleteBeforeReplace: false },
      );
      const fetched = { artifact, localPath: cachePath(artifact, this.cacheDir), fetch };
      this.fetched.set(artifactName, fetched);
      return fetched;
    });
  }
}
