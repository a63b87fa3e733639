/**
 * CoreDNS, the cluster's DNS (chapter 7), as the objects kubeadm's addon creates: a
 * ServiceAccount, a ClusterRole to read Services, EndpointSlices, Pods and Namespaces and its
 * binding, the Corefile in a ConfigMap, a Deployment of two replicas, and the `kube-dns` Service
 * on the address every kubelet hands pods as their nameserver. Beyond kubeadm, a
 * PodDisruptionBudget keeps one replica running while a node is drained, where a second node can
 * take the evicted one.
 *
 * Every object is a plain function of the address plan here, so it reads in one place and a real
 * API server can validate it (tests/addons/coredns.test.ts); the component below only creates
 * them, in the order the API needs them.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CONTROL_PLANE_TAINT } from "../kubernetes/kubelet";
import { AddressPlan } from "../network/addressPlan";
import { objectOptions } from "./provider";
import { ADDONS_NAMESPACE } from "./values";

export const COREDNS_NAME = "coredns";
/** The Service keeps kubeadm's (and kube-dns's) name: tools look the cluster DNS up by it. */
export const COREDNS_SERVICE = "kube-dns";
export const COREDNS_LABELS = { "k8s-app": "kube-dns" } as const;
export const COREDNS_REPLICAS = 2;
/** CoreDNS's upstream image, as kubeadm names it. */
export const COREDNS_IMAGE = "registry.k8s.io/coredns/coredns";

export const corednsImage = (version: string) => `${COREDNS_IMAGE}:v${version}`;

/** Ports CoreDNS's own plugins listen on (`health`, `ready`, `prometheus` below). */
const HEALTH_PORT = 8080;
const READY_PORT = 8181;
const METRICS_PORT = 9153;

/**
 * The Corefile: the cluster domain and reverse zones from the API (`kubernetes`), everything else
 * to the node's resolver (`forward . /etc/resolv.conf`: the pods run with dnsPolicy Default, so
 * that is the host's dnsmasq, which knows the VMs' names). Answers for the cluster domain are not
 * cached (`disable`), so a new Service resolves at once.
 */
export function renderCorefile(clusterDomain: string): string {
  return [
    ".:53 {",
    "    errors",
    "    health {",
    "        lameduck 5s",
    "    }",
    "    ready",
    `    kubernetes ${clusterDomain} in-addr.arpa ip6.arpa {`,
    "        pods insecure",
    "        fallthrough in-addr.arpa ip6.arpa",
    "        ttl 30",
    "    }",
    `    prometheus :${METRICS_PORT}`,
    "    forward . /etc/resolv.conf {",
    "        max_concurrent 1000",
    "    }",
    "    cache 30 {",
    `        disable success ${clusterDomain}`,
    `        disable denial ${clusterDomain}`,
    "    }",
    "    loop",
    "    reload",
    "    loadbalance",
    "}",
    "",
  ].join("\n");
}

export interface CorednsObjectsArgs {
  readonly plan: AddressPlan;
  /** CoreDNS release, e.g. "1.14.6" (config `versions.coredns`). */
  readonly version: string;
}

import Input = k8s.types.input;

/** The objects as the API takes them (plain values, so they serialise to JSON as they are). */
export interface CorednsObjects {
  readonly serviceAccount: Input.core.v1.ServiceAccount;
  readonly clusterRole: Input.rbac.v1.ClusterRole;
  readonly clusterRoleBinding: Input.rbac.v1.ClusterRoleBinding;
  readonly configMap: Input.core.v1.ConfigMap;
  readonly deployment: Input.apps.v1.Deployment;
  readonly service: Input.core.v1.Service;
  /** Only where two nodes take pods (podDisruptionBudgetFits). */
  readonly podDisruptionBudget?: Input.policy.v1.PodDisruptionBudget;
}

/**
 * Whether a PodDisruptionBudget can be honoured: only when a replica evicted from a draining node
 * has another node to start on. On a one-node cluster both replicas share the node, and a budget
 * of one would block every drain of it (an upgrade across a minor drains each node). CoreDNS
 * tolerates the control-plane taint, so every kubelet node counts.
 */
export function podDisruptionBudgetFits(plan: AddressPlan): boolean {
  return plan.kubeletNodes.length >= 2;
}

/** Every CoreDNS object for a plan. */
export function corednsObjects(args: CorednsObjectsArgs): CorednsObjects {
  const { plan } = args;
  const namespaced = (name: string) => ({ name, namespace: ADDONS_NAMESPACE });
  const labels = { ...COREDNS_LABELS };
  const dnsPorts = [
    { name: "dns", port: 53, protocol: "UDP" },
    { name: "dns-tcp", port: 53, protocol: "TCP" },
    { name: "metrics", port: METRICS_PORT, protocol: "TCP" },
  ];
  // As kubeadm's: control nodes take CoreDNS even beside workers, so the cluster's DNS has a
  // second node to run on (and a drained worker's replica somewhere to go) with one worker.
  const tolerations = [
    { key: "CriticalAddonsOnly", operator: "Exists" },
    { key: CONTROL_PLANE_TAINT.key, operator: "Exists", effect: CONTROL_PLANE_TAINT.effect },
  ];
  return {
    serviceAccount: {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: namespaced(COREDNS_NAME),
    },
    clusterRole: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: `system:${COREDNS_NAME}` },
      rules: [
        {
          apiGroups: [""],
          resources: ["services", "pods", "namespaces"],
          verbs: ["list", "watch"],
        },
        {
          apiGroups: ["discovery.k8s.io"],
          resources: ["endpointslices"],
          verbs: ["list", "watch"],
        },
      ],
    },
    clusterRoleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `system:${COREDNS_NAME}` },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: `system:${COREDNS_NAME}`,
      },
      subjects: [{ kind: "ServiceAccount", name: COREDNS_NAME, namespace: ADDONS_NAMESPACE }],
    },
    configMap: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: namespaced(COREDNS_NAME),
      data: { Corefile: renderCorefile(plan.clusterDomain) },
    },
    deployment: {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { ...namespaced(COREDNS_NAME), labels },
      spec: {
        replicas: COREDNS_REPLICAS,
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            priorityClassName: "system-cluster-critical",
            serviceAccountName: COREDNS_NAME,
            // One replica per node where there are two nodes; both on one node where there is one.
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "ScheduleAnyway",
                labelSelector: { matchLabels: labels },
              },
            ],
            tolerations,
            nodeSelector: { "kubernetes.io/os": "linux" },
            // The node's resolver, not the cluster DNS: CoreDNS must not ask itself.
            dnsPolicy: "Default",
            containers: [
              {
                name: COREDNS_NAME,
                image: corednsImage(args.version),
                imagePullPolicy: "IfNotPresent",
                args: ["-conf", "/etc/coredns/Corefile"],
                resources: {
                  limits: { memory: "170Mi" },
                  requests: { cpu: "100m", memory: "70Mi" },
                },
                volumeMounts: [{ name: "config", mountPath: "/etc/coredns", readOnly: true }],
                ports: [
                  ...dnsPorts.map((p) => ({
                    name: p.name,
                    containerPort: p.port,
                    protocol: p.protocol,
                  })),
                  { name: "liveness-probe", containerPort: HEALTH_PORT, protocol: "TCP" },
                  { name: "readiness-probe", containerPort: READY_PORT, protocol: "TCP" },
                ],
                livenessProbe: {
                  httpGet: { path: "/health", port: "liveness-probe", scheme: "HTTP" },
                  initialDelaySeconds: 60,
                  timeoutSeconds: 5,
                  failureThreshold: 5,
                },
                readinessProbe: {
                  httpGet: { path: "/ready", port: "readiness-probe", scheme: "HTTP" },
                },
                // Port 53 as a non-root user: the one capability it needs, nothing else.
                securityContext: {
                  allowPrivilegeEscalation: false,
                  capabilities: { add: ["NET_BIND_SERVICE"], drop: ["ALL"] },
                  readOnlyRootFilesystem: true,
                },
              },
            ],
            volumes: [
              {
                name: "config",
                configMap: { name: COREDNS_NAME, items: [{ key: "Corefile", path: "Corefile" }] },
              },
            ],
          },
        },
      },
    },
    service: {
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        ...namespaced(COREDNS_SERVICE),
        labels: { ...labels, "kubernetes.io/name": "CoreDNS" },
        annotations: { "prometheus.io/port": String(METRICS_PORT), "prometheus.io/scrape": "true" },
      },
      spec: {
        clusterIP: plan.clusterDnsIp,
        selector: labels,
        ports: dnsPorts.map((p) => ({ ...p, targetPort: p.port })),
      },
    },
    ...(podDisruptionBudgetFits(plan)
      ? {
          podDisruptionBudget: {
            apiVersion: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: namespaced(COREDNS_NAME),
            spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
          },
        }
      : {}),
  };
}

export interface CorednsArgs extends CorednsObjectsArgs {
  /** ClusterAccess.provider: gated on API health, named by the cluster. */
  readonly provider: k8s.Provider;
  /** The etcd step (Etcd.members): every object here is deleted with it. */
  readonly clusterData: pulumi.Resource;
  /**
   * What CoreDNS's pods need before they can run: the first kubelet, Cilium when it is the CNI.
   * @default [] (only the provider's API health gate)
   */
  readonly after?: readonly pulumi.Resource[];
  /**
   * Minutes `up` waits for a replica to be Ready, when the provider's 10 are too few (emulated
   * nodes where Cilium must start first).
   * @default the provider's 10
   */
  readonly readyTimeoutMinutes?: number;
}

/** CoreDNS's objects in the cluster; `deployment` is Ready once a replica answers /ready. */
export class Coredns extends pulumi.ComponentResource {
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;

  constructor(name: string, args: CorednsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:addons:Coredns", name, {}, opts);
    const o = corednsObjects(args);
    const options = (dependsOn: pulumi.Resource[] = []) =>
      objectOptions(args.provider, this, args.clusterData, dependsOn);
    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      o.serviceAccount,
      options(),
    );
    const clusterRole = new k8s.rbac.v1.ClusterRole(`${name}-role`, o.clusterRole, options());
    const binding = new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-binding`,
      o.clusterRoleBinding,
      options([clusterRole, serviceAccount]),
    );
    const configMap = new k8s.core.v1.ConfigMap(`${name}-config`, o.configMap, options());
    const minutes = args.readyTimeoutMinutes;
    this.deployment = new k8s.apps.v1.Deployment(`${name}-deployment`, o.deployment, {
      ...options([binding, configMap, ...(args.after ?? [])]),
      ...(minutes === undefined
        ? {}
        : { customTimeouts: { create: `${minutes}m`, update: `${minutes}m` } }),
    });
    this.service = new k8s.core.v1.Service(`${name}-service`, o.service, options());
    if (o.podDisruptionBudget !== undefined) {
      new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, o.podDisruptionBudget, options());
    }
    this.registerOutputs({ clusterIP: this.service.spec.clusterIP });
  }
}
