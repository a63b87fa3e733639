/**
 * Where the end-to-end caches live, and the local release mirror that tests/e2e/build-mirror.sh
 * builds from Go modules: the files every test tier installs. `npm run toolchain` builds it
 * (`ts-node tests/e2e/mirror.ts`) before the first tier runs; lower tiers use its files (etcd
 * and containerd at the pinned versions) and are skipped, saying why, where it is not built.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultVersions } from "../../components/config/defaults";

/** `${XDG_CACHE_HOME:-~/.cache}/hardway`: every cache the project and its tests keep. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "hardway");
}

export function mirrorDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), "e2e", "mirror");
}

export const BUILD_MIRROR_SCRIPT = path.resolve(__dirname, "build-mirror.sh");

/** The patch before a version, e.g. 1.36.5 → 1.36.4: the e2e installs it, then upgrades. */
export function previousPatch(version: string): string {
  const [major, minor, patch] = version.split(".").map(Number);
  if (!(patch > 0)) {
    throw new Error(`${version} has no earlier patch of its minor to upgrade from`);
  }
  return `${major}.${minor}.${patch - 1}`;
}

/**
 * build-mirror.sh's options for the releases the tiers install: the pinned versions, and the
 * Kubernetes patch before the pinned one.
 */
export function mirrorArgs(mirror: string, v = defaultVersions): string[] {
  return [
    "--mirror",
    mirror,
    "--kubernetes",
    `${previousPatch(v.kubernetes)},${v.kubernetes}`,
    "--etcd",
    v.etcd,
    "--containerd",
    v.containerd,
    "--runc",
    v.runc,
    "--cni-plugins",
    v.cniPlugins,
    "--crictl",
    v.crictl,
  ];
}

/**
 * Builds what the mirror lacks (each release cached by version: seconds when all are there),
 * its progress on stderr; returns the mirror's directory.
 */
export function buildMirror(mirror = mirrorDir()): string {
  const built = spawnSync("bash", [BUILD_MIRROR_SCRIPT, ...mirrorArgs(mirror)], {
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 7_200_000,
  });
  if (built.status !== 0) {
    throw new Error(
      `${BUILD_MIRROR_SCRIPT} exited ${built.status ?? built.signal}: the release mirror is not complete`,
    );
  }
  return mirror;
}

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
      missing: `${tarball} is not built yet; \`npm run toolchain\` builds the release mirror`,
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
      missing: `${tarball} is not built yet; \`npm run toolchain\` builds the release mirror`,
    };
  }
  const untar = spawnSync("tar", ["-xzf", tarball, "-C", dest], { encoding: "utf8" });
  if (untar.status !== 0) {
    throw new Error(`cannot unpack ${tarball}: ${untar.stderr}`);
  }
  return { dir: path.join(dest, "bin") };
}

/** `npm run toolchain`'s second half: the release mirror, or why it cannot be built here. */
if (require.main === module) {
  if (spawnSync("sh", ["-c", "command -v go"]).status !== 0) {
    console.error(
      "[mirror] no Go toolchain on PATH (Go 1.26, e.g. /usr/local/go/bin): the release mirror is not built, so npm test skips the tests that run real etcd and containerd, and npm run e2e cannot run",
    );
  } else {
    const started = Date.now();
    const mirror = buildMirror();
    console.error(
      `[mirror] ${mirror} holds every release the tiers install (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
}
