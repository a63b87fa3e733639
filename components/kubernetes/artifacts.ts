/**
 * Which release files the cluster needs, where they come from, how each is verified and where
 * its binaries go on the VMs. The host downloads each file once into a cache
 * (assets/artifacts/fetch.sh) and copies it to the nodes that need it.
 */
import * as path from "node:path";
import { HardwayConfig } from "../config/schema";
import { Role } from "../network/addressPlan";
import { BIN_DIR, CNI_BIN_DIR, CRIO_LIBEXEC_DIR, SBIN_DIR } from "./paths";

/**
 * How a release publishes its sha256:
 * - `bare`: the file holds only the hex digest (dl.k8s.io `.sha256`, cri-tools `.sha256`);
 * - `sha256sum`: `<digest>  <file name>` lines, possibly for many files (etcd SHA256SUMS).
 */
export type ChecksumFormat = "bare" | "sha256sum";

export type ChecksumSource =
  | {
      readonly kind: "file";
      readonly url: string;
      readonly format: ChecksumFormat;
      readonly entry: string;
    }
  | { readonly kind: "pinned"; readonly sha256: string };

export type ArchiveKind = "binary" | "tar.gz";

export interface InstalledBinary {
  /** Path inside the archive; for a bare binary, the downloaded file itself (""). */
  readonly member: string;
  readonly installPath: string;
}

export interface Artifact {
  /** Stable id, e.g. "kube-apiserver", "etcd", "containerd". */
  readonly name: string;
  readonly version: string;
  readonly arch: HardwayConfig["arch"];
  readonly url: string;
  /** The file name at the end of the URL. */
  readonly fileName: string;
  readonly checksum: ChecksumSource;
  readonly archive: ArchiveKind;
  readonly binaries: readonly InstalledBinary[];
  readonly roles: readonly Role[];
}

type ArtifactConfig = Pick<HardwayConfig, "versions" | "arch" | "containerRuntime" | "cni"> & {
  /** Base of a mirror with the upstream layout; see mirroredUrl. @default the upstream hosts */
  readonly releaseMirror?: string;
};

/**
 * Where a release file comes from when a mirror is set: `https://<host>/<path>` becomes
 * `<mirror>/<host>/<path>`. A mirror is a base URL (https://, http://, file://) or an absolute
 * local directory.
 */
export function mirroredUrl(url: string, mirror: string | undefined): string {
  if (mirror === undefined || mirror === "") {
    return url;
  }
  const match = /^https?:\/\/(.+)$/.exec(url);
  if (!match) {
    throw new Error(`${url} is not an http(s) URL, so it has no place in a mirror`);
  }
  const base = (mirror.startsWith("/") ? `file://${mirror}` : mirror).replace(/\/+$/, "");
  return `${base}/${match[1]}`;
}

/** The artifact as fetched through the mirror (URL and checksum URL both). */
function throughMirror(a: Artifact, mirror: string | undefined): Artifact {
  if (mirror === undefined || mirror === "") {
    return a;
  }
  return {
    ...a,
    url: mirroredUrl(a.url, mirror),
    checksum:
      a.checksum.kind === "file"
        ? { ...a.checksum, url: mirroredUrl(a.checksum.url, mirror) }
        : a.checksum,
  };
}

const KUBELET_NODES: readonly Role[] = ["control", "worker"];
const CONTROL: readonly Role[] = ["control"];

function withFileName(a: Omit<Artifact, "fileName">): Artifact {
  return { ...a, fileName: a.url.slice(a.url.lastIndexOf("/") + 1) };
}

function kubernetesBinary(c: ArtifactConfig, name: string, roles: readonly Role[]): Artifact {
  const url = `https://dl.k8s.io/release/v${c.versions.kubernetes}/bin/linux/${c.arch}/${name}`;
  return withFileName({
    name,
    version: c.versions.kubernetes,
    arch: c.arch,
    url,
    checksum: { kind: "file", url: `${url}.sha256`, format: "bare", entry: name },
    archive: "binary",
    binaries: [{ member: "", installPath: `${BIN_DIR}/${name}` }],
    roles,
  });
}

/** Binaries of the CNI plugins tarball that each CNI choice needs on the node. */
export function cniPluginBinaries(cni: ArtifactConfig["cni"]): string[] {
  // Runtimes call `loopback` themselves for every pod; Cilium installs its own cilium-cni.
  return cni === "bridge" ? ["bridge", "host-local", "loopback", "portmap"] : ["loopback"];
}

/** Every artifact the configuration needs, in install order. */
export function artifacts(c: ArtifactConfig): Artifact[] {
  const { versions: v, arch } = c;
  const list: Artifact[] = [
    kubernetesBinary(c, "kube-apiserver", CONTROL),
    kubernetesBinary(c, "kube-controller-manager", CONTROL),
    kubernetesBinary(c, "kube-scheduler", CONTROL),
    kubernetesBinary(c, "kubectl", CONTROL),
    kubernetesBinary(c, "kubelet", KUBELET_NODES),
  ];
  if (c.cni === "bridge") {
    list.push(kubernetesBinary(c, "kube-proxy", KUBELET_NODES));
  }
  const etcdDir = `etcd-v${v.etcd}-linux-${arch}`;
  const etcdFile = `${etcdDir}.tar.gz`;
  list.push(
    withFileName({
      name: "etcd",
      version: v.etcd,
      arch,
      url: `https://github.com/etcd-io/etcd/releases/download/v${v.etcd}/${etcdFile}`,
      checksum: {
        kind: "file",
        url: `https://github.com/etcd-io/etcd/releases/download/v${v.etcd}/SHA256SUMS`,
        format: "sha256sum",
        entry: etcdFile,
      },
      archive: "tar.gz",
      binaries: ["etcd", "etcdctl", "etcdutl"].map((b) => ({
        member: `${etcdDir}/${b}`,
        installPath: `${BIN_DIR}/${b}`,
      })),
      roles: CONTROL,
    }),
  );
  if (c.containerRuntime === "containerd") {
    const file = `containerd-${v.containerd}-linux-${arch}.tar.gz`;
    const url = `https://github.com/containerd/containerd/releases/download/v${v.containerd}/${file}`;
    const runcUrl = `https://github.com/opencontainers/runc/releases/download/v${v.runc}/runc.${arch}`;
    const crictlUrl = `https://github.com/kubernetes-sigs/cri-tools/releases/download/v${v.crictl}/crictl-v${v.crictl}-linux-${arch}.tar.gz`;
    list.push(
      withFileName({
        name: "containerd",
        version: v.containerd,
        arch,
        url,
        checksum: { kind: "file", url: `${url}.sha256sum`, format: "sha256sum", entry: file },
        archive: "tar.gz",
        binaries: ["containerd", "containerd-shim-runc-v2", "ctr"].map((b) => ({
          member: `bin/${b}`,
          installPath: `${BIN_DIR}/${b}`,
        })),
        roles: KUBELET_NODES,
      }),
      withFileName({
        name: "runc",
        version: v.runc,
        arch,
        url: runcUrl,
        checksum: {
          kind: "file",
          url: `https://github.com/opencontainers/runc/releases/download/v${v.runc}/runc.sha256sum`,
          format: "sha256sum",
          entry: `runc.${arch}`,
        },
        archive: "binary",
        binaries: [{ member: "", installPath: `${SBIN_DIR}/runc` }],
        roles: KUBELET_NODES,
      }),
      withFileName({
        name: "crictl",
        version: v.crictl,
        arch,
        url: crictlUrl,
        checksum: {
          kind: "file",
          url: `${crictlUrl}.sha256`,
          format: "bare",
          entry: path.posix.basename(crictlUrl),
        },
        archive: "tar.gz",
        binaries: [{ member: "crictl", installPath: `${BIN_DIR}/crictl` }],
        roles: KUBELET_NODES,
      }),
    );
  } else {
    // The CRI-O bundle carries its own runc, crun, conmon and crictl, so none is fetched separately.
    const url = `https://storage.googleapis.com/cri-o/artifacts/cri-o.${arch}.v${v.crio}.tar.gz`;
    list.push(
      withFileName({
        name: "cri-o",
        version: v.crio,
        arch,
        url,
        checksum: {
          kind: "file",
          url: `${url}.sha256sum`,
          format: "sha256sum",
          entry: path.posix.basename(url),
        },
        archive: "tar.gz",
        binaries: [
          ...["crio", "pinns", "crictl"].map((b) => ({
            member: `cri-o/bin/${b}`,
            installPath: `${BIN_DIR}/${b}`,
          })),
          ...["conmon", "conmonrs", "crun", "runc"].map((b) => ({
            member: `cri-o/bin/${b}`,
            installPath: `${CRIO_LIBEXEC_DIR}/${b}`,
          })),
        ],
        roles: KUBELET_NODES,
      }),
    );
  }
  const cniFile = `cni-plugins-linux-${arch}-v${v.cniPlugins}.tgz`;
  const cniUrl = `https://github.com/containernetworking/plugins/releases/download/v${v.cniPlugins}/${cniFile}`;
  list.push(
    withFileName({
      name: "cni-plugins",
      version: v.cniPlugins,
      arch,
      url: cniUrl,
      checksum: { kind: "file", url: `${cniUrl}.sha256`, format: "sha256sum", entry: cniFile },
      archive: "tar.gz",
      binaries: cniPluginBinaries(c.cni).map((b) => ({
        member: `./${b}`,
        installPath: `${CNI_BIN_DIR}/${b}`,
      })),
      roles: KUBELET_NODES,
    }),
  );
  return list.map((a) => throughMirror(a, c.releaseMirror));
}

/** The artifacts one role installs. The gateway needs none: ldirectord comes from the distribution. */
export function artifactsFor(role: Role, all: readonly Artifact[]): Artifact[] {
  return all.filter((a) => a.roles.includes(role));
}

/**
 * The artifacts a node of this role installs in a cluster built through `through`: the control
 * plane's own (chapter 5), and with "nodes" every kubelet node's too (chapter 6: runtime,
 * kubelet, kube-proxy; the ones workers install as well).
 */
export function nodeArtifacts(
  role: Role,
  all: readonly Artifact[],
  through: "controlPlane" | "nodes",
): Artifact[] {
  return artifactsFor(role, all).filter((a) => through === "nodes" || !a.roles.includes("worker"));
}

/** `${XDG_CACHE_HOME:-$HOME/.cache}/hardway/artifacts`, as fetch.sh computes it. */
export function defaultCacheDir(
  env: Readonly<Record<string, string | undefined>>,
  home: string,
): string {
  const base =
    env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== ""
      ? env.XDG_CACHE_HOME
      : `${home}/.cache`;
  return `${base}/hardway/artifacts`;
}

/**
 * Where a verified download lives: by name, version and arch, so a version bump fetches a new
 * file and the old one can be pruned by directory. fetch.sh records the verified digest beside it.
 */
export function cachePath(artifact: Artifact, cacheDir: string): string {
  return path.posix.join(
    cacheDir,
    artifact.name,
    artifact.version,
    artifact.arch,
    artifact.fileName,
  );
}

/**
 * The arguments after the verb for assets/artifacts/fetch.sh, which downloads and verifies one
 * artifact and holds it for `holder` (one stack).
 */
export function fetchArgs(artifact: Artifact, cacheDir: string, holder: string): string[] {
  const checksum =
    artifact.checksum.kind === "pinned"
      ? ["--sha256", artifact.checksum.sha256]
      : [
          "--checksum-url",
          artifact.checksum.url,
          "--checksum-format",
          artifact.checksum.format,
          "--checksum-entry",
          artifact.checksum.entry,
        ];
  return [
    "--url",
    artifact.url,
    "--dest",
    cachePath(artifact, cacheDir),
    "--holder",
    holder,
    ...checksum,
  ];
}
