/**
 * Where things live on the VMs. The layout follows kubeadm's (`/etc/kubernetes/pki`, `*.conf`
 * kubeconfigs) so people who know kubeadm clusters find their way around; the renderers and the
 * remote-file wiring both read it from here.
 */
import { etcdPeerCertId, etcdServerCertId, kubeletCertId, Signer } from "../pki/certificates";

export const BIN_DIR = "/usr/local/bin";
export const SBIN_DIR = "/usr/local/sbin";
export const CNI_BIN_DIR = "/opt/cni/bin";
export const CNI_CONF_DIR = "/etc/cni/net.d";
export const CRIO_LIBEXEC_DIR = "/usr/libexec/crio";
export const SYSTEMD_DIR = "/etc/systemd/system";

const K8S = "/etc/kubernetes";
const PKI = `${K8S}/pki`;

export const NODE_PATHS = {
  pkiDir: PKI,
  etcdPkiDir: `${PKI}/etcd`,
  serviceAccountPublicKey: `${PKI}/sa.pub`,
  serviceAccountPrivateKey: `${PKI}/sa.key`,
  encryptionConfig: `${K8S}/encryption-config.yaml`,
  auditPolicy: `${K8S}/audit-policy.yaml`,
  authenticationConfig: `${K8S}/authentication-config.yaml`,
  auditLogDir: "/var/log/kubernetes",
  auditLog: "/var/log/kubernetes/audit.log",
  schedulerConfig: `${K8S}/kube-scheduler.yaml`,
  etcdDataDir: "/var/lib/etcd",
  /**
   * The etcd unit's ExecStartPre (assets/node/etcd-join.sh), and what it writes for etcd, in
   * the unit's runtime directory (systemd creates it at start and removes it at stop).
   */
  etcdJoinScript: "/usr/local/lib/hardway/etcd-join.sh",
  etcdMembers: "/etc/etcd/members",
  etcdMemberScript: "/usr/local/lib/hardway/etcd-member.sh",
  etcdJoinEnv: "/run/etcd/join.env",
  kubeletDir: "/var/lib/kubelet",
  kubeletConfig: "/var/lib/kubelet/config.yaml",
  /** A link the kubelet unit points at the node's real resolv.conf each time it starts. */
  kubeletResolvConf: "/var/lib/kubelet/resolv.conf",
  kubeProxyDir: "/var/lib/kube-proxy",
  kubeProxyConfig: "/var/lib/kube-proxy/config.yaml",
  kubeconfigs: {
    admin: `${K8S}/admin.conf`,
    controllerManager: `${K8S}/controller-manager.conf`,
    scheduler: `${K8S}/scheduler.conf`,
    kubelet: `${K8S}/kubelet.conf`,
    kubeProxy: `${K8S}/kube-proxy.conf`,
  },
  containerdConfig: "/etc/containerd/config.toml",
  crioDropIn: "/etc/crio/crio.conf.d/20-hardway.conf",
  crictlConfig: "/etc/crictl.yaml",
  cniConfList: `${CNI_CONF_DIR}/10-hardway-bridge.conflist`,
  ldirectordConfig: "/etc/ha.d/ldirectord.cf",
} as const;

export interface PemFiles {
  readonly cert: string;
  readonly key: string;
}

/** Where each CA's certificate (and, where a daemon signs with it, its key) is installed. */
export const CA_FILES: Readonly<Record<Signer, PemFiles>> = {
  "kubernetes-ca": { cert: `${PKI}/ca.crt`, key: `${PKI}/ca.key` },
  "etcd-ca": { cert: `${PKI}/etcd/ca.crt`, key: `${PKI}/etcd/ca.key` },
  "front-proxy-ca": { cert: `${PKI}/front-proxy-ca.crt`, key: `${PKI}/front-proxy-ca.key` },
};

const pair = (base: string): PemFiles => ({ cert: `${base}.crt`, key: `${base}.key` });

/**
 * The installed location of a leaf certificate (ids from certificateSpecs). Node-specific
 * certificates get node-independent paths, so every node's units read the same files.
 */
export function certFiles(certId: string): PemFiles {
  const fixed: Record<string, PemFiles> = {
    "kube-apiserver": pair(`${PKI}/apiserver`),
    "kube-apiserver-kubelet-client": pair(`${PKI}/apiserver-kubelet-client`),
    "kube-apiserver-etcd-client": pair(`${PKI}/apiserver-etcd-client`),
    "etcd-healthcheck-client": pair(`${PKI}/etcd/healthcheck-client`),
    "front-proxy-client": pair(`${PKI}/front-proxy-client`),
  };
  if (certId in fixed) {
    return fixed[certId];
  }
  const perNode: [(node: string) => string, PemFiles][] = [
    [kubeletCertId, pair(`${PKI}/kubelet`)],
    [etcdServerCertId, pair(`${PKI}/etcd/server`)],
    [etcdPeerCertId, pair(`${PKI}/etcd/peer`)],
  ];
  for (const [idOf, files] of perNode) {
    const prefix = idOf("");
    if (certId.startsWith(prefix) && certId.length > prefix.length) {
      return files;
    }
  }
  throw new Error(
    `certificate "${certId}" is not installed as a file on nodes; it is embedded in a kubeconfig or unknown`,
  );
}
