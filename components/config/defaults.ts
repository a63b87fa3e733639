/**
 * Pinned defaults for `hardway:versions`. Every version below is a published release that
 * exists for both linux/arm64 and linux/amd64, with the checksum file each project publishes
 * beside it. Kubernetes 1.36 is the newest minor every other pin supports:
 * - etcd 3.6: what Kubernetes 1.34-1.36 test and kubeadm installs (3.7 goes with 1.37);
 * - containerd 2.3: RELEASES.md lists 2.3 (LTS) and 2.2 for Kubernetes 1.36;
 * - CRI-O and crictl of the same minor, 1.36;
 * - Cilium 1.20: its compatibility page e2e-tests Kubernetes 1.33-1.36; 1.21, which adds 1.37,
 *   was not released yet.
 * kubernetesSupport.ts keeps the end-of-life dates; a test fails when a pin goes out of support.
 */
export const defaultVersions = {
  kubernetes: "1.36.5",
  etcd: "3.6.16",
  containerd: "2.3.7",
  crio: "1.36.3",
  runc: "1.5.2",
  cniPlugins: "1.9.1",
  crictl: "1.36.0",
  charts: {
    cilium: { repository: "https://helm.cilium.io/", chart: "cilium", version: "1.20.2" },
    coredns: { repository: "https://coredns.github.io/helm", chart: "coredns", version: "1.46.2" },
    metallb: {
      repository: "https://metallb.github.io/metallb",
      chart: "metallb",
      version: "0.16.2",
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
