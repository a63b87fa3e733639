/**
 * Pinned defaults for `hardway:versions`. Every version below is a published release that
 * exists for both linux/arm64 and linux/amd64, with the checksum file each project publishes
 * beside it. Kubernetes 1.37 is the newest minor (1.38 is not released yet), and every other pin
 * goes with it (kubernetesSupport.ts keeps the table, and warns about a pin that does not fit):
 * - etcd 3.7: what kubeadm 1.37 installs (DefaultEtcdVersion 3.7.0); 3.7.3 its newest patch;
 * - containerd 2.3 (LTS): RELEASES.md (v2.4.2) recommends 2.4 and 2.3 for Kubernetes 1.37, and
 *   2.4 reaches its end of life before 1.37 does;
 * - CRI-O and crictl of the same minor, 1.37; runc 1.5.3 (a security fix over 1.5.2);
 * - CoreDNS 1.14.6: what kubeadm 1.37.2 deploys (CoreDNSVersion), as typed objects of our own;
 * - Cilium 1.20: its compatibility page e2e-tests Kubernetes 1.33-1.36; no release tests 1.37
 *   yet, so cni=cilium warns.
 * A test fails when the pinned minor goes out of support.
 */
export const defaultVersions = {
  kubernetes: "1.37.2",
  etcd: "3.7.3",
  containerd: "2.3.7",
  crio: "1.37.0",
  runc: "1.5.3",
  cniPlugins: "1.9.1",
  crictl: "1.37.0",
  coredns: "1.14.6",
  charts: {
    cilium: { repository: "https://helm.cilium.io/", chart: "cilium", version: "1.20.2" },
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
