/**
 * BaseImage: the cloud image every VM's overlay disk is backed by, fetched once into the
 * per-user content-addressed cache and verified by sha256 (see assets/vm/fetch-image.sh).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { shortHash } from "../host/layout";
import { FETCH_IMAGE_SCRIPT, shellCommand } from "./vmScript";

export interface BaseImageArgs {
  /** Where the image is downloaded from; its SHA256SUMS file is expected beside it. */
  readonly url: string;
  /**
   * The image's sha256, 64 lowercase hex digits.
   * @default the digest SHA256SUMS next to `url` publishes
   */
  readonly sha256?: string;
  /**
   * A local copy of the image for air-gapped hosts; nothing is downloaded.
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

export class BaseImage extends pulumi.ComponentResource {
  /** Absolute path of the verified image in the cache. */
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
    const script = ["bash", FETCH_IMAGE_SCRIPT];
    const scriptSha256 = crypto
      .createHash("sha256")
      .update(fs.readFileSync(FETCH_IMAGE_SCRIPT))
      .digest("hex");
    const triggers = [args.url, args.sha256 ?? "", args.path ?? "", scriptSha256];
    // A replacement creates the new command before deleting the old one; distinct holder marks
    // keep the old one's release from dropping an image the new one just took hold of.
    const holder = `${args.holder}.${shortHash(JSON.stringify(triggers), 12)}`;
    const common = ["--holder", holder, ...(args.cacheDir ? ["--cache-dir", args.cacheDir] : [])];
    const source = [
      "--url",
      args.url,
      ...(args.sha256 ? ["--sha256", args.sha256] : []),
      ...(args.path ? ["--path", args.path] : []),
    ];
    const fetch = new command.local.Command(
      `${name}-fetch`,
      {
        create: shellCommand([...script, "fetch", ...source, ...common]),
        // The cached path the create step printed; the release removes it once nobody holds it.
        delete: `${shellCommand([...script, "release", ...common])} --image "$PULUMI_COMMAND_STDOUT"`,
        triggers,
        logging: "stdoutAndStderr",
      },
      { parent: this },
    );
    this.url = args.url;
    this.path = fetch.stdout.apply((out) => out.trim());
    this.registerOutputs({ path: this.path, url: this.url });
  }
}
