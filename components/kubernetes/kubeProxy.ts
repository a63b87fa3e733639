/**
 * kube-proxy, only with the bridge CNI (Cilium replaces it). iptables mode: it is the default,
 * needs no extra kernel modules on the nodes, and the gateway's IPVS is separate from it.
 */
import { stringify } from "yaml";
import { AddressPlan, NodeAddress } from "../network/addressPlan";
import { BIN_DIR, NODE_PATHS } from "./paths";
import { flags, renderServiceUnit, ServiceUnit } from "./systemd";

export function kubeProxyConfiguration(
  plan: AddressPlan,
  node: NodeAddress,
): Record<string, unknown> {
  return {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clientConnection: { kubeconfig: NODE_PATHS.kubeconfigs.kubeProxy },
    mode: "iptables",
    // Traffic to a Service from outside this range is masqueraded, so replies come back through the node.
    clusterCIDR: plan.clusterCidr,
    hostnameOverride: node.name,
  };
}

export function renderKubeProxyConfiguration(plan: AddressPlan, node: NodeAddress): string {
  return stringify(kubeProxyConfiguration(plan, node));
}

export function kubeProxyUnit(): ServiceUnit {
  return {
    unit: {
      description: "Kubernetes network proxy (kube-proxy)",
      documentation: [
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/",
      ],
      wants: ["network-online.target"],
      after: ["network-online.target"],
    },
    service: {
      execStart: [`${BIN_DIR}/kube-proxy`, ...flags({ config: NODE_PATHS.kubeProxyConfig, v: 2 })],
    },
  };
}

export function renderKubeProxyUnit(): string {
  return renderServiceUnit(kubeProxyUnit());
}
