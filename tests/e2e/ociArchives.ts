/**
 * The two pod images the end-to-end cluster runs without a registry, written as OCI image
 * archives (the layout `ctr images import` and hardway:podImages take):
 *
 * - the sandbox image, registry.k8s.io/pause: Kubernetes' own pause.c from the k8s.io/kubernetes
 *   module at the pinned version, compiled static as its Makefile does;
 * - hardway.test/echo: Debian's static busybox serving HTTP on 8080, with a CGI that answers the
 *   caller's address, so a test can see whether pod traffic was NATed.
 *
 * Cached by content; a second run takes a second.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { SANDBOX_IMAGE } from "../../components/kubernetes/runtime";

export const ECHO_IMAGE = "hardway.test/echo:1";
export const ECHO_PORT = 8080;

interface ImageFile {
  /** Path inside the image. */
  readonly path: string;
  readonly mode: number;
  readonly content?: Buffer | string;
  /** A symbolic link to this target instead of content. */
  readonly link?: string;
}

interface ImageSpec {
  readonly name: string;
  /** Layers below the files' own, bottom first: uncompressed tar archives on this machine. */
  readonly baseLayers?: readonly string[];
  readonly files: readonly ImageFile[];
  readonly entrypoint?: readonly string[];
  /** The containers' environment, "NAME=value". */
  readonly env?: readonly string[];
}

/** tar's options for an archive whose bytes depend only on the files' contents and modes. */
export const REPRODUCIBLE_TAR = [
  "--sort=name",
  "--owner=0",
  "--group=0",
  "--numeric-owner",
  "--mtime=@0",
] as const;

const sha256 = (data: Buffer | string) => crypto.createHash("sha256").update(data).digest("hex");

/** A file's sha256, read in pieces (a base layer can be most of a gigabyte). */
function sha256File(file: string): string {
  const hash = crypto.createHash("sha256");
  const piece = Buffer.alloc(8 << 20);
  const fd = fs.openSync(file, "r");
  try {
    for (let n = fs.readSync(fd, piece); n > 0; n = fs.readSync(fd, piece)) {
      hash.update(piece.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/** A layer as the image layout holds it: gzipped, with its digests and size. */
interface Layer {
  /** The gzipped blob's file. */
  readonly file: string;
  readonly digest: string;
  readonly size: number;
  /** The sha256 of the uncompressed tar (the config's diff_id). */
  readonly diffId: string;
}

/** `tar` gzipped into `dir` by gzip itself (no name or time in the header: reproducible). */
function gzipLayer(tar: string, dir: string): Layer {
  const gz = path.join(dir, `${path.basename(tar)}.${process.pid}.gz`);
  const fd = fs.openSync(gz, "w");
  try {
    const zipped = spawnSync("gzip", ["-n", "-c", tar], { stdio: ["ignore", fd, "pipe"] });
    if (zipped.status !== 0) {
      throw new Error(`gzip ${tar} failed: ${zipped.stderr.toString()}`);
    }
  } finally {
    fs.closeSync(fd);
  }
  return {
    file: gz,
    digest: `sha256:${sha256File(gz)}`,
    size: fs.statSync(gz).size,
    diffId: `sha256:${sha256File(tar)}`,
  };
}

/** Writes an OCI image layout for `spec` as a tar archive at `out`. */
export function writeOciArchive(spec: ImageSpec, out: string, arch = "amd64"): void {
  const work = fs.mkdtempSync(`${out}.work-`);
  try {
    const rootfs = path.join(work, "rootfs");
    for (const file of spec.files) {
      const target = path.join(rootfs, file.path);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      if (file.link !== undefined) {
        fs.symlinkSync(file.link, target);
      } else {
        fs.writeFileSync(target, file.content ?? "");
        fs.chmodSync(target, file.mode);
      }
    }
    const layerTar = path.join(work, "layer.tar");
    execFileSync("tar", [...REPRODUCIBLE_TAR, "-C", rootfs, "-cf", layerTar, "."]);
    const layers = [...(spec.baseLayers ?? []), layerTar].map((tar) => gzipLayer(tar, work));
    const config = JSON.stringify({
      architecture: arch,
      os: "linux",
      config: {
        ...(spec.entrypoint === undefined ? {} : { Entrypoint: spec.entrypoint }),
        ...(spec.env === undefined ? {} : { Env: spec.env }),
      },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: `sha256:${sha256(config)}`,
        size: Buffer.byteLength(config),
      },
      layers: layers.map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: l.digest,
        size: l.size,
      })),
    });
    const layout = path.join(work, "layout");
    const blobs = path.join(layout, "blobs", "sha256");
    fs.mkdirSync(blobs, { recursive: true });
    for (const layer of layers) {
      fs.renameSync(layer.file, path.join(blobs, layer.digest.slice("sha256:".length)));
    }
    for (const blob of [Buffer.from(config), Buffer.from(manifest)]) {
      fs.writeFileSync(path.join(blobs, sha256(blob)), blob);
    }
    fs.writeFileSync(
      path.join(layout, "oci-layout"),
      JSON.stringify({ imageLayoutVersion: "1.0.0" }),
    );
    fs.writeFileSync(
      path.join(layout, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: `sha256:${sha256(manifest)}`,
            size: Buffer.byteLength(manifest),
            platform: { architecture: arch, os: "linux" },
            annotations: {
              "io.containerd.image.name": spec.name,
              "org.opencontainers.image.ref.name": spec.name.split(":").pop(),
            },
          },
        ],
      }),
    );
    execFileSync("tar", ["--sort=name", "--mtime=@0", "-C", layout, "-cf", `${out}.tmp`, "."]);
    fs.renameSync(`${out}.tmp`, out);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The pause binary, compiled from the k8s.io/kubernetes module's build/pause/linux/pause.c. */
function buildPause(kubernetesVersion: string, work: string): Buffer {
  const info = spawnSync(
    "go",
    ["mod", "download", "-json", `k8s.io/kubernetes@v${kubernetesVersion}`],
    {
      encoding: "utf8",
      env: { ...process.env, GOFLAGS: "-mod=mod", GONOSUMDB: "k8s.io/kubernetes" },
    },
  );
  if (info.status !== 0) {
    throw new Error(`cannot download k8s.io/kubernetes@v${kubernetesVersion}: ${info.stderr}`);
  }
  const dir = (JSON.parse(info.stdout) as { Dir: string }).Dir;
  const tag = /^TAG \?= (\S+)$/m.exec(
    fs.readFileSync(path.join(dir, "build/pause/Makefile"), "utf8"),
  )?.[1];
  const out = path.join(work, "pause");
  execFileSync("gcc", [
    "-Os",
    "-Wall",
    "-Werror",
    "-static",
    `-DVERSION=v${tag ?? "unknown"}-hardway`,
    "-o",
    out,
    path.join(dir, "build/pause/linux/pause.c"),
  ]);
  return fs.readFileSync(out);
}

const ECHO_CGI = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "$REMOTE_ADDR"
`;

/**
 * The client address the echo CGI printed. busybox httpd listens on an IPv6 socket, so an IPv4
 * peer comes as "[::ffff:192.168.234.1]".
 */
export function peerAddress(printed: string): string {
  return printed
    .trim()
    .replace(/^\[?(::ffff:)?/, "")
    .replace(/\]$/, "");
}

export interface PodImageArchives {
  readonly pause: string;
  readonly echo: string;
}

/** Both archives in `dir`, built unless they are there already. */
export function buildPodImageArchives(dir: string, kubernetesVersion: string): PodImageArchives {
  fs.mkdirSync(dir, { recursive: true });
  const busybox = "/bin/busybox";
  if (!fs.existsSync(busybox)) {
    throw new Error("the echo image needs Debian's static busybox (package busybox-static)");
  }
  const key = sha256(
    [kubernetesVersion, SANDBOX_IMAGE, ECHO_IMAGE, ECHO_CGI, sha256(fs.readFileSync(busybox))].join(
      "\0",
    ),
  ).slice(0, 16);
  const pause = path.join(dir, `pause-${key}.tar`);
  const echo = path.join(dir, `echo-${key}.tar`);
  if (!fs.existsSync(pause)) {
    const work = fs.mkdtempSync(path.join(dir, ".pause-"));
    try {
      writeOciArchive(
        {
          name: SANDBOX_IMAGE,
          files: [{ path: "pause", mode: 0o755, content: buildPause(kubernetesVersion, work) }],
          entrypoint: ["/pause"],
        },
        pause,
      );
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  if (!fs.existsSync(echo)) {
    writeOciArchive(
      {
        name: ECHO_IMAGE,
        files: [
          { path: "bin/busybox", mode: 0o755, content: fs.readFileSync(busybox) },
          { path: "bin/sh", mode: 0o777, link: "busybox" },
          { path: "www/cgi-bin/ip", mode: 0o755, content: ECHO_CGI },
          { path: "www/index.html", mode: 0o644, content: "hardway\n" },
        ],
        entrypoint: ["/bin/busybox", "httpd", "-f", "-vv", "-p", String(ECHO_PORT), "-h", "/www"],
      },
      echo,
    );
  }
  return { pause, echo };
}
