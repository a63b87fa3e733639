/**
 * BaseImage: the image every VM's overlay disk is backed by: downloaded once into the per-user
 * cache and verified by sha256, or a local file used where it is (assets/vm/fetch-image.sh).
 * Its path follows from the configuration alone, so a preview knows it before any download,
 * and an edit of the script updates it in place instead of replacing every VM.
 */
import * as crypto from "node:crypto";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { EnsuredScript } from "../host/ensured";

export const FETCH_IMAGE_SCRIPT = "vm/fetch-image.sh";

export interface BaseImageArgs {
  /** Where the image is downloaded from; its SHA256SUMS file is expected beside it. */
  readonly url: string;
  /**
   * The image's sha256, 64 lowercase hex digits.
   * @default the digest SHA256SUMS next to `url` publishes
   */
  readonly sha256?: string;
  /**
   * A local image for air-gapped hosts or a prebaked image; nothing is downloaded.
   * @default undefined (download from `url`)
   */
  readonly path?: string;
  /**
   * Who holds the cached image; the cache keeps an image until its last holder releases it.
   * Use one per stack, e.g. `hardway-dev`.
   */
  readonly holder: string;
  /**
   * The cache directory.
   * @default `${XDG_CACHE_HOME:-~/.cache}/hardway/images`
   */
  readonly cacheDir?: string;
}

/** `${XDG_CACHE_HOME:-$HOME/.cache}/hardway/images`. */
export function defaultImageCacheDir(
  env: Readonly<Record<string, string | undefined>>,
  home: string,
): string {
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : `${home}/.cache`;
  return `${base}/hardway/images`;
}

/**
 * Where the image will be: the local path itself, or a cache entry named by the pinned digest
 * (the same image under any URL) or else by the URL. Pure.
 */
export function baseImagePath(
  args: Pick<BaseImageArgs, "url" | "sha256" | "path">,
  cacheDir: string,
): string {
  if (args.path !== undefined) {
    return args.path;
  }
  const key =
    args.sha256 !== undefined
      ? `sha256-${args.sha256}`
      : `url-${crypto.createHash("sha256").update(args.url).digest("hex").slice(0, 16)}`;
  const file = path.posix.basename(new URL(args.url).pathname) || "image.img";
  return path.posix.join(cacheDir, key, file);
}

/** fetch-image.sh's arguments after the verb. Pure. */
export function fetchImageArgs(args: BaseImageArgs, cacheDir: string): string[] {
  const source =
    args.path !== undefined
      ? ["--path", args.path]
      : ["--url", args.url, "--dest", baseImagePath(args, cacheDir)];
  return ["--holder", args.holder, ...source, ...(args.sha256 ? ["--sha256", args.sha256] : [])];
}

export class BaseImage extends pulumi.ComponentResource {
  /** Absolute path of the image; resolves once it is there. */
  readonly path: pulumi.Output<string>;
  readonly url: string;

  constructor(name: string, args: BaseImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:vm:BaseImage", name, {}, opts);
    if (args.holder.length === 0 || args.holder.includes("/")) {
      throw new pulumi.ResourceError(
        `BaseImage ${name}: holder must be a non-empty name without "/" (got "${args.holder}")`,
        this,
      );
    }
    const cacheDir = args.cacheDir ?? defaultImageCacheDir(process.env, os.homedir());
    const image = baseImagePath(args, cacheDir);
    const fetch = new EnsuredScript(
      `${name}-fetch`,
      { script: FETCH_IMAGE_SCRIPT, args: fetchImageArgs(args, cacheDir), timeoutSeconds: 3600 },
      // Another image is another file: the new one comes before the old one is released.
      { parent: this, deleteBeforeReplace: false },
    );
    this.url = args.url;
    // Through the script's inputs, so it is known in a preview unless the image itself changes.
    this.path = fetch.args.apply(() => image);
    this.registerOutputs({ path: this.path, url: this.url });
  }
}
