/**
 * Where the end-to-end caches live and how to reach the release files in the local mirror that
 * tests/e2e/build-mirror.sh builds from Go modules. Lower test tiers use the same files when
 * they are there (etcd at the pinned version, say), and say so when they are not.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** `${XDG_CACHE_HOME:-~/.cache}/hardway`: every cache the project and its tests keep. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "hardway");
}

export function mirrorDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), "e2e", "mirror");
}

export const BUILD_MIRROR_SCRIPT = path.resolve(__dirname, "build-mirror.sh");

/**
 * etcd and etcdctl of that version, unpacked from the mirror into `dest`; undefined (and the
 * reason) when the mirror does not hold them yet.
 */
export function etcdFromMirror(
  version: string,
  dest: string,
  arch = "amd64",
): { dir: string } | { missing: string } {
  const name = `etcd-v${version}-linux-${arch}`;
  const tarball = path.join(
    mirrorDir(),
    "github.com/etcd-io/etcd/releases/download",
    `v${version}`,
    `${name}.tar.gz`,
  );
  if (!fs.existsSync(tarball)) {
    return {
      missing: `${tarball} is not built yet; \`npm run e2e\` builds the release mirror (or run ${BUILD_MIRROR_SCRIPT})`,
    };
  }
  const untar = spawnSync("tar", ["-xzf", tarball, "-C", dest], { encoding: "utf8" });
  if (untar.status !== 0) {
    throw new Error(`cannot unpack ${tarball}: ${untar.stderr}`);
  }
  return { dir: path.join(dest, name) };
}

/** containerd's binaries of that version, unpacked from the mirror into `dest`. */
export function containerdFromMirror(
  version: string,
  dest: string,
  arch = "amd64",
): { dir: string } | { missing: string } {
  const tarball = path.join(
    mirrorDir(),
    "github.com/containerd/containerd/releases/download",
    `v${version}`,
    `containerd-${version}-linux-${arch}.tar.gz`,
  );
  if (!fs.existsSync(tarball)) {
    return {
      missing: `${tarball} is not built yet; \`npm run e2e\` builds the release mirror (or run ${BUILD_MIRROR_SCRIPT})`,
    };
  }
  const untar = spawnSync("tar", ["-xzf", tarball, "-C", dest], { encoding: "utf8" });
  if (untar.status !== 0) {
    throw new Error(`cannot unpack ${tarball}: ${untar.stderr}`);
  }
  return { dir: path.join(dest, "bin") };
}
