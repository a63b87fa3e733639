/**
 * What the cluster's certificates must say, as plain data. The layout follows kubeadm's: three
 * CAs (cluster, etcd, front proxy), a serving cert per server and a client cert per identity,
 * with exactly the CN/O that Kubernetes' RBAC and Node authorizer expect.
 */
import { AddressPlan, NodeAddress } from "../network/addressPlan";
import { Usage } from "./x509";

export type { Usage };

export type Signer = "kubernetes-ca" | "etcd-ca" | "front-proxy-ca";

export interface CaSpec {
  readonly id: Signer;
  readonly commonName: string;
}

export interface CertSpec {
  /** Unique, stable id; also the suffix of the Pulumi resource names. */
  readonly id: string;
  readonly signer: Signer;
  readonly commonName: string;
  readonly organization?: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly usages: readonly Usage[];
  /** The VM this certificate is installed on, when it belongs to one node only. */
  readonly node?: string;
}

export const CA_USAGES: readonly Usage[] = [
  "cert_signing",
  "crl_signing",
  "digital_signature",
  "key_encipherment",
];
const SERVER: readonly Usage[] = ["digital_signature", "key_encipherment", "server_auth"];
const CLIENT: readonly Usage[] = ["digital_signature", "key_encipherment", "client_auth"];
const BOTH: readonly Usage[] = [
  "digital_signature",
  "key_encipherment",
  "server_auth",
  "client_auth",
];

export const CAS: readonly CaSpec[] = [
  { id: "kubernetes-ca", commonName: "kubernetes-ca" },
  { id: "etcd-ca", commonName: "etcd-ca" },
  { id: "front-proxy-ca", commonName: "front-proxy-ca" },
];

/** The DNS names by which in-cluster clients reach the API through the `kubernetes` Service. */
export function kubernetesServiceNames(clusterDomain: string): string[] {
  const names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"];
  const labels = clusterDomain.split(".");
  for (let i = 1; i <= labels.length; i++) {
    names.push(`kubernetes.default.svc.${labels.slice(0, i).join(".")}`);
  }
  return names;
}

function nodeNames(node: NodeAddress): string[] {
  return [node.name, node.fqdn];
}

/** Who kube-apiserver is when it calls kubelets; RBAC grants this user the kubelet API. */
export const APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client";
/** The identity of admin.conf on the control nodes. */
export const NODE_ADMIN = "node-admin";
/** The group ClusterAccess binds to cluster-admin. */
export const CLUSTER_ADMINS_GROUP = "hardway:cluster-admins";

export function kubeletCertId(node: string): string {
  return `kubelet-${node}`;
}

export function etcdServerCertId(node: string): string {
  return `etcd-server-${node}`;
}

export function etcdPeerCertId(node: string): string {
  return `etcd-peer-${node}`;
}

/** Every leaf certificate of the cluster, in a stable order. */
export function certificateSpecs(plan: AddressPlan): CertSpec[] {
  const controlIps = plan.controls.map((c) => c.ip);
  const specs: CertSpec[] = [
    {
      id: "kube-apiserver",
      signer: "kubernetes-ca",
      commonName: "kube-apiserver",
      dnsNames: [
        ...kubernetesServiceNames(plan.clusterDomain),
        `${plan.apiName}.${plan.domain}`,
        "localhost",
        ...plan.controls.flatMap(nodeNames),
      ],
      ipAddresses: [plan.apiVip, plan.apiServiceIp, "127.0.0.1", ...controlIps],
      usages: SERVER,
    },
    {
      // Authenticates kube-apiserver to kubelets (logs, exec, port-forward); bound to the
      // system:kubelet-api-admin ClusterRole rather than given system:masters.
      id: APISERVER_KUBELET_CLIENT,
      signer: "kubernetes-ca",
      commonName: APISERVER_KUBELET_CLIENT,
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
    {
      id: "kube-apiserver-etcd-client",
      signer: "etcd-ca",
      commonName: "kube-apiserver-etcd-client",
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
    {
      // etcdctl's identity for health checks and debugging, separate from the apiserver's.
      id: "etcd-healthcheck-client",
      signer: "etcd-ca",
      commonName: "kube-etcd-healthcheck-client",
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
    {
      // kube-apiserver presents this to aggregated API servers (e.g. metrics-server), which
      // trust it through the front-proxy CA and the requestheader flags.
      id: "front-proxy-client",
      signer: "front-proxy-ca",
      commonName: "front-proxy-client",
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
    {
      // The stack's `kubeconfig` output: system:masters, which no RBAC rule can take away (like
      // kubeadm's super-admin.conf). It stays with Pulumi and the user, never on a VM.
      id: "admin",
      signer: "kubernetes-ca",
      commonName: "admin",
      organization: "system:masters",
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
    {
      // admin.conf on the control nodes (like kubeadm's admin.conf): a group that a
      // ClusterRoleBinding makes cluster-admin, so deleting the binding revokes it.
      id: NODE_ADMIN,
      signer: "kubernetes-ca",
      commonName: NODE_ADMIN,
      organization: CLUSTER_ADMINS_GROUP,
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
    {
      id: "kube-controller-manager",
      signer: "kubernetes-ca",
      commonName: "system:kube-controller-manager",
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
    {
      id: "kube-scheduler",
      signer: "kubernetes-ca",
      commonName: "system:kube-scheduler",
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
    {
      id: "kube-proxy",
      signer: "kubernetes-ca",
      commonName: "system:kube-proxy",
      organization: "system:node-proxier",
      dnsNames: [],
      ipAddresses: [],
      usages: CLIENT,
    },
  ];
  for (const node of plan.kubeletNodes) {
    // One certificate serves the kubelet's HTTPS endpoint and authenticates it to the API
    // server as system:node:<name>, which the Node authorizer and NodeRestriction require.
    specs.push({
      id: kubeletCertId(node.name),
      signer: "kubernetes-ca",
      commonName: `system:node:${node.name}`,
      organization: "system:nodes",
      dnsNames: nodeNames(node),
      ipAddresses: [node.ip],
      usages: BOTH,
      node: node.name,
    });
  }
  for (const node of plan.controls) {
    const etcdNames = [...nodeNames(node), "localhost"];
    const etcdIps = [node.ip, "127.0.0.1"];
    specs.push(
      {
        id: etcdServerCertId(node.name),
        signer: "etcd-ca",
        commonName: node.name,
        dnsNames: etcdNames,
        ipAddresses: etcdIps,
        usages: BOTH,
        node: node.name,
      },
      {
        id: etcdPeerCertId(node.name),
        signer: "etcd-ca",
        commonName: node.name,
        dnsNames: etcdNames,
        ipAddresses: etcdIps,
        usages: BOTH,
        node: node.name,
      },
    );
  }
  return specs;
}
