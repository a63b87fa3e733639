/**
 * Pinned defaults for `hardway:versions`. Every version below is a published release that
 * exists for both linux/arm64 and linux/amd64. Kubernetes 1.33 is paired with the CRI-O and
 * crictl of the same minor and with a Cilium release tested against it. Binaries are verified
 * against the checksum file each project publishes beside the release.
 */
export const defaultVersions = {
  kubernetes: "1.33.13",
  etcd: "3.5.33",
  containerd: "2.3.4",
  crio: "1.33.13",
  runc: "1.4.3",
  cniPlugins: "1.9.1",
  crictl: "1.33.0",
  charts: {
    cilium: { repository: "https://helm.cilium.io/", chart: "cilium", version: "1.18.12" },
    coredns: { repository: "https://coredns.github.io/helm", chart: "coredns", version: "1.46.2" },
    metallb: {
      repository: "https://metallb.github.io/metallb",
      chart: "metallb",
      version: "0.16.1",
    },
    nfsProvisioner: {
      repository: "https://kubernetes-sigs.github.io/nfs-subdir-external-provisioner/",
      chart: "nfs-subdir-external-provisioner",
      version: "4.0.18",
    },
  },
} as const;

/** Ubuntu 24.04 LTS (noble) cloud image for an architecture; its SHA256SUMS sits beside it. */
export function defaultImageUrl(arch: "arm64" | "amd64"): string {
  return `https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-${arch}.img`;
}
