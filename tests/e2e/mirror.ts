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

/**
 * What the e2e installs first and then upgrades from, one minor below the pins: the newest
 * patch of Kubernetes 1.36 the Go module proxy serves (k8s.io/kubernetes v1.36.5), with the
 * etcd and crictl of that minor (go.etcd.io/etcd/server/v3 v3.6.16, sigs.k8s.io/cri-tools
 * v1.36.0). Move it with `defaultVersions`: tests/e2e/upgrade.test.ts checks it is one minor below.
 */
export const UPGRADE_FROM = { kubernetes: "1.36.5", etcd: "3.6.16", crictl: "1.36.0" } as const;

/**
 * What the HA run installs first and then upgrades from, a patch below the pins (a rolling
 * upgrade of every member and API server that stays within the minor): k8s.io/kubernetes v1.37.1
 * and go.etcd.io/etcd/server/v3 v3.7.2, both served by the Go module proxy.
 */
export const PATCH_FROM = { kubernetes: "1.37.1", etcd: "3.7.2" } as const;

/** Which releases below the pins a run installs before upgrading to them. */
export interface MirrorOptions {
  readonly minorUpgrade: boolean;
  readonly patchUpgrade?: boolean;
}

/**
 * build-mirror.sh's options for the releases the tiers install: the pins, and etcd at
 * UPGRADE_FROM (npm test upgrades a real etcd cluster from it). Kubernetes and crictl at
 * UPGRADE_FROM only with `minorUpgrade`: `npm run e2e -- --no-upgrade` never installs them,
 * and Kubernetes is the longest build of a cold machine (about 5 minutes a release). Kubernetes
 * and etcd at PATCH_FROM only with `patchUpgrade` (the HA run).
 */
export function mirrorArgs(mirror: string, options: MirrorOptions, v = defaultVersions): string[] {
  const from = (version: string, pin: string) => (options.minorUpgrade ? `${version},${pin}` : pin);
  const patch = (version: string) => (options.patchUpgrade === true ? [version] : []);
  const list = (...versions: string[]) => [...new Set(versions)].join(",");
  return [
    "--mirror",
    mirror,
    "--kubernetes",
    list(...patch(PATCH_FROM.kubernetes), from(UPGRADE_FROM.kubernetes, v.kubernetes)),
    "--etcd",
    list(UPGRADE_FROM.etcd, ...patch(PATCH_FROM.etcd), v.etcd),
    "--containerd",
    v.containerd,
    "--runc",
    v.runc,
    "--cni-plugins",
    v.cniPlugins,
    "--crictl",
    from(UPGRADE_FROM.crictl, v.crictl),
  ];
}

/**
 * Builds what the mirror lacks (each release cached by version: seconds when all are there),
 * its progress on stderr; returns the mirror's directory.
 */
export function buildMirror(
  options: MirrorOptions = { minorUpgrade: false },
  mirror = mirrorDir(),
): string {
  const built = spawnSync("bash", [BUILD_MIRROR_SCRIPT, ...mirrorArgs(mirror, options)], {
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

/** A Kubernetes binary of that version from the mirror (kube-scheduler, say), made executable. */
export function kubernetesBinaryFromMirror(
  version: string,
  name: string,
  arch = "amd64",
): { path: string } | { missing: string } {
  const file = path.join(mirrorDir(), "dl.k8s.io/release", `v${version}`, "bin/linux", arch, name);
  if (!fs.existsSync(file)) {
    return { missing: `${file} is not built yet; \`npm run toolchain\` builds the release mirror` };
  }
  fs.chmodSync(file, 0o755);
  return { path: file };
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

/** crictl of that version, unpacked from the mirror into `dest`. */
export function crictlFromMirror(
  version: string,
  dest: string,
  arch = "amd64",
): { file: string } | { missing: string } {
  const tarball = path.join(
    mirrorDir(),
    "github.com/kubernetes-sigs/cri-tools/releases/download",
    `v${version}`,
    `crictl-v${version}-linux-${arch}.tar.gz`,
  );
  if (!fs.existsSync(tarball)) {
    return {
      missing: `${tarball} is not built yet; \`npm run toolchain\` builds the release mirror`,
    };
  }
  fs.mkdirSync(dest, { recursive: true });
  const untar = spawnSync("tar", ["-xzf", tarball, "-C", dest], { encoding: "utf8" });
  if (untar.status !== 0) {
    throw new Error(`cannot unpack ${tarball}: ${untar.stderr}`);
  }
  return { file: path.join(dest, "crictl") };
}

/**
 * `npm run toolchain`'s second half: the release mirror, or why it cannot be built here.
 * `npm run toolchain -- --no-upgrade` leaves out what only the upgrade e2e installs.
 */
if (require.main === module) {
  if (spawnSync("sh", ["-c", "command -v go"]).status !== 0) {
    console.error(
      "[mirror] no Go toolchain on PATH (Go 1.26, e.g. /usr/local/go/bin): the release mirror is not built, so npm test skips the tests that run real etcd and containerd, and npm run e2e cannot run",
    );
  } else {
    const started = Date.now();
    // --no-upgrade: without Kubernetes and crictl one minor below, which only the upgrade e2e
    // installs; it builds them itself when it runs (prepare in local.ts).
    const minorUpgrade = !process.argv.includes("--no-upgrade");
    const mirror = buildMirror({ minorUpgrade });
    console.error(
      `[mirror] ${mirror} holds every release npm test and npm run e2e${minorUpgrade ? "" : " -- --no-upgrade"} install (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
}
