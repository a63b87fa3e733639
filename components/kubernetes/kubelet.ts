/**
 * The kubelet on every control node and worker. Control nodes register with a NoSchedule taint
 * so only pods that tolerate it (DaemonSets such as Cilium) land there.
 */
import { stringify } from "yaml";
import { Cni, ContainerRuntime } from "../config/schema";
import { AddressPlan, NodeAddress } from "../network/addressPlan";
import { kubeletCertId } from "../pki/certificates";
import { BIN_DIR, CA_FILES, certFiles, NODE_PATHS } from "./paths";
import { RUNTIME_ENDPOINTS, RUNTIME_SERVICES } from "./runtime";
import { flags, renderServiceUnit, ServiceUnit } from "./systemd";

export const CONTROL_PLANE_TAINT = {
  key: "node-role.kubernetes.io/control-plane",
  effect: "NoSchedule",
} as const;

/**
 * With systemd-resolved (Ubuntu) /etc/resolv.conf points at the stub 127.0.0.53, which pods
 * cannot reach; this file has the real servers. Images without systemd-resolved (Debian's) have
 * no such file, and the kubelet then fails every pod sandbox.
 */
export const SYSTEMD_RESOLVED_RESOLV_CONF = "/run/systemd/resolve/resolv.conf";

/**
 * Before each start, point NODE_PATHS.kubeletResolvConf at resolved's file when the node runs
 * systemd-resolved, else at /etc/resolv.conf: one kubelet configuration for every image.
 */
export const LINK_RESOLV_CONF: readonly string[] = [
  "/bin/sh",
  "-c",
  `mkdir -p ${NODE_PATHS.kubeletDir} && if [ -s ${SYSTEMD_RESOLVED_RESOLV_CONF} ]; ` +
    `then ln -sfn ${SYSTEMD_RESOLVED_RESOLV_CONF} ${NODE_PATHS.kubeletResolvConf}; ` +
    `else ln -sfn /etc/resolv.conf ${NODE_PATHS.kubeletResolvConf}; fi`,
];

export interface KubeletArgs {
  readonly plan: AddressPlan;
  readonly node: NodeAddress;
  readonly runtime: ContainerRuntime;
  readonly cni: Cni;
  /** @default NODE_PATHS.kubeletResolvConf (see LINK_RESOLV_CONF) */
  readonly resolvConf?: string;
}

export function kubeletConfiguration(args: KubeletArgs): Record<string, unknown> {
  const { plan, node } = args;
  if (node.role === "gateway" || node.podCidr === undefined) {
    throw new Error(`node ${node.name} runs no kubelet (role ${node.role})`);
  }
  const serving = certFiles(kubeletCertId(node.name));
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: CA_FILES["kubernetes-ca"].cert },
    },
    authorization: { mode: "Webhook" },
    cgroupDriver: "systemd",
    containerRuntimeEndpoint: RUNTIME_ENDPOINTS[args.runtime],
    clusterDomain: plan.clusterDomain,
    clusterDNS: [plan.clusterDnsIp],
    resolvConf: args.resolvConf ?? NODE_PATHS.kubeletResolvConf,
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    // The certificates come from our PKI; no CSR flow exists to rotate them.
    rotateCertificates: false,
    serverTLSBootstrap: false,
    ...(args.cni === "bridge" ? { podCIDR: node.podCidr } : {}),
    registerNode: true,
    ...(node.role === "control" ? { registerWithTaints: [CONTROL_PLANE_TAINT] } : {}),
  };
}

export function renderKubeletConfiguration(args: KubeletArgs): string {
  return stringify(kubeletConfiguration(args));
}

export function kubeletCommand(args: KubeletArgs): string[] {
  return [
    `${BIN_DIR}/kubelet`,
    ...flags({
      config: NODE_PATHS.kubeletConfig,
      kubeconfig: NODE_PATHS.kubeconfigs.kubelet,
      // The Node authorizer and NodeRestriction tie the node object to the cert's system:node:<name>.
      "hostname-override": args.node.name,
      "node-ip": args.node.ip,
      v: 2,
    }),
  ];
}

export function kubeletUnit(args: KubeletArgs): ServiceUnit {
  const runtime = RUNTIME_SERVICES[args.runtime];
  return {
    unit: {
      description: "Kubernetes node agent (kubelet)",
      documentation: ["https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/"],
      wants: ["network-online.target"],
      requires: [runtime],
      after: ["network-online.target", runtime],
    },
    service: {
      execStartPre: [LINK_RESOLV_CONF],
      execStart: kubeletCommand(args),
      restartSec: 5,
    },
  };
}

export function renderKubeletUnit(args: KubeletArgs): string {
  return renderServiceUnit(kubeletUnit(args));
}
