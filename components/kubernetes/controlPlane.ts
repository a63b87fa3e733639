/**
 * kube-apiserver, kube-controller-manager and kube-scheduler on each control node, plus the files
 * only they read (audit policy, scheduler configuration).
 */
import { stringify } from "yaml";
import { AddressPlan, NodeAddress } from "../network/addressPlan";
import { BIN_DIR, CA_FILES, certFiles, NODE_PATHS } from "./paths";
import { etcdClientUrls } from "./etcd";
import { CONTROL_PLANE_CPU_WEIGHT, flags, renderServiceUnit, ServiceUnit } from "./systemd";

/** Days, files and MiB of audit log kept on each control node. */
export interface AuditLogRetention {
  readonly maxAgeDays: number;
  readonly maxBackups: number;
  readonly maxSizeMb: number;
}

export const DEFAULT_AUDIT_RETENTION: AuditLogRetention = {
  maxAgeDays: 7,
  maxBackups: 5,
  maxSizeMb: 100,
};

export interface ApiServerArgs {
  readonly plan: AddressPlan;
  readonly node: NodeAddress;
  /** @default DEFAULT_AUDIT_RETENTION */
  readonly audit?: AuditLogRetention;
  /**
   * Seconds a request may take before the server gives up on it (`--request-timeout`).
   * @default the server's own, 60 s
   */
  readonly requestTimeoutSeconds?: number;
  /**
   * Seconds the server's etcd health and readiness checks (/livez, /readyz) may take.
   * @default the server's own, 2 s
   */
  readonly etcdCheckTimeoutSeconds?: number;
}

/**
 * `--request-timeout` on emulated (TCG) control nodes. The first client request for the OpenAPI
 * document makes the server build it, which outlasted the default 60 s on a loaded TCG guest:
 * the server then reset the stream and Pulumi's Kubernetes provider, which reads that document
 * once when it is configured, failed the whole run. The program gives that provider the same
 * request timeout there (ClusterProviderArgs.requestTimeoutSeconds).
 */
export const EMULATED_API_REQUEST_TIMEOUT_SECONDS = 300;

/**
 * `--etcd-healthcheck-timeout` and `--etcd-readycheck-timeout` on emulated (TCG) control nodes.
 * With the default 2 s, a loaded guest's etcd answered the check too late now and then: /readyz
 * failed ("[-]etcd-readiness failed"), ldirectord took the only API server out of the VIP, and
 * clients were refused for minutes while nothing was wrong but the load.
 */
export const EMULATED_ETCD_CHECK_TIMEOUT_SECONDS = 10;

/** How long a leader's lease lasts, how long it may take to renew it, how often to retry. */
export interface LeaderElectionTiming {
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineSeconds: number;
  readonly retryPeriodSeconds: number;
}

/**
 * Leader election for the controller managers and schedulers on emulated (TCG) control nodes.
 * The defaults (15 s lease, 10 s to renew) gave up on a loaded guest: each renewal request may
 * take half the renew deadline (client-go resourcelock.NewFromKubeconfig), 5 s, and the API
 * server took longer, so the leader exited (`Failed to renew lease ... context deadline
 * exceeded`), restarted, and never synced its caches: Deployments got no ReplicaSets. With three
 * 1-vCPU control nodes (the HA run) a 60 s lease renewed within 40 s was lost as well: renewals
 * of 20 s each timed out while writes took up to the API server's own 34 s deadline, the
 * controller manager exited and took 12 minutes to start its controllers again, and meanwhile no
 * namespace got its default ServiceAccount. Each renewal now has 60 s (half the renew deadline),
 * longer than the API server lets any write run. A failover then takes up to three minutes
 * instead of 15 s.
 */
export const EMULATED_LEADER_ELECTION: LeaderElectionTiming = {
  leaseDurationSeconds: 180,
  renewDeadlineSeconds: 120,
  retryPeriodSeconds: 10,
};

/**
 * Whether the controller managers and schedulers elect a leader. With one control plane there is
 * no standby to hand over to, and the lease only adds a way to fail: on an emulated guest a
 * renewal took longer than the 40 s deadline while pods started, and the only controller
 * manager exited (`leaderelection lost`) and left Deployments unsynced for two minutes. kubeadm
 * elects even then; with a single instance, which systemd stops before it starts the next, no
 * two can ever act at once.
 */
export function electsLeader(plan: AddressPlan): boolean {
  return plan.controls.length > 1;
}

const unitBase = (description: string, after: string[] = ["network-online.target"]) => ({
  description,
  documentation: ["https://kubernetes.io/docs/reference/command-line-tools-reference/"],
  wants: ["network-online.target"],
  after,
});

export function apiServerCommand(args: ApiServerArgs): string[] {
  const { plan, node } = args;
  const audit = args.audit ?? DEFAULT_AUDIT_RETENTION;
  const serving = certFiles("kube-apiserver");
  const etcdClient = certFiles("kube-apiserver-etcd-client");
  const kubeletClient = certFiles("kube-apiserver-kubelet-client");
  const frontProxy = certFiles("front-proxy-client");
  return [
    `${BIN_DIR}/kube-apiserver`,
    ...flags({
      "advertise-address": node.ip,
      "bind-address": "0.0.0.0",
      "secure-port": plan.apiPort,
      "allow-privileged": true,
      "authorization-mode": ["Node", "RBAC"],
      "enable-admission-plugins": ["NodeRestriction"],
      "enable-bootstrap-token-auth": false,
      "client-ca-file": CA_FILES["kubernetes-ca"].cert,
      "tls-cert-file": serving.cert,
      "tls-private-key-file": serving.key,
      "etcd-servers": etcdClientUrls(plan.controls),
      "etcd-cafile": CA_FILES["etcd-ca"].cert,
      "etcd-certfile": etcdClient.cert,
      "etcd-keyfile": etcdClient.key,
      "encryption-provider-config": NODE_PATHS.encryptionConfig,
      "audit-policy-file": NODE_PATHS.auditPolicy,
      "audit-log-path": NODE_PATHS.auditLog,
      "audit-log-maxage": audit.maxAgeDays,
      "audit-log-maxbackup": audit.maxBackups,
      "audit-log-maxsize": audit.maxSizeMb,
      // Tokens name the VIP as issuer, so they stay valid whichever control node signed them.
      "service-account-issuer": plan.apiServerUrl,
      "service-account-key-file": NODE_PATHS.serviceAccountPublicKey,
      "service-account-signing-key-file": NODE_PATHS.serviceAccountPrivateKey,
      "service-cluster-ip-range": plan.serviceCidr,
      "kubelet-certificate-authority": CA_FILES["kubernetes-ca"].cert,
      "kubelet-client-certificate": kubeletClient.cert,
      "kubelet-client-key": kubeletClient.key,
      // Kubelet serving certs carry the node IP, and node names resolve only through the host's DNS.
      "kubelet-preferred-address-types": ["InternalIP", "Hostname"],
      "proxy-client-cert-file": frontProxy.cert,
      "proxy-client-key-file": frontProxy.key,
      "requestheader-client-ca-file": CA_FILES["front-proxy-ca"].cert,
      "requestheader-allowed-names": ["front-proxy-client"],
      "requestheader-username-headers": "X-Remote-User",
      "requestheader-group-headers": "X-Remote-Group",
      "requestheader-extra-headers-prefix": "X-Remote-Extra-",
      // Only /healthz, /livez and /readyz answer anonymous requests (see authenticationConfig).
      "authentication-config": NODE_PATHS.authenticationConfig,
      profiling: false,
      // On a graceful stop /readyz fails at once while the server keeps serving this long, so
      // the load balancer drains it before its connections close.
      "shutdown-delay-duration": `${API_SHUTDOWN_DELAY_SECONDS}s`,
      // Then it answers new requests 429 with Retry-After (clients ask again, through the VIP
      // another server), waits for the requests in flight, and gives its connections 2 s to
      // close. Without it the HTTP server waits for every connection to go idle, up to the
      // request timeout; watches never do, so each stop took that long (300 s on emulated
      // nodes) or ended in systemd's SIGKILL: in HA run 12 each API server hung a minute after
      // its last request had drained, until TimeoutStopSec.
      "shutdown-send-retry-after": true,
      "request-timeout":
        args.requestTimeoutSeconds === undefined ? undefined : `${args.requestTimeoutSeconds}s`,
      "etcd-healthcheck-timeout":
        args.etcdCheckTimeoutSeconds === undefined ? undefined : `${args.etcdCheckTimeoutSeconds}s`,
      "etcd-readycheck-timeout":
        args.etcdCheckTimeoutSeconds === undefined ? undefined : `${args.etcdCheckTimeoutSeconds}s`,
      v: 2,
    }),
  ];
}

/** Seconds api-ready.sh waits for an API server to answer /readyz after a (re)start. */
export const API_START_TIMEOUT_SECONDS = 600;

/**
 * The same on emulated (TCG) control nodes. The first API server of a cluster writes its
 * bootstrap RBAC roles and bindings (about 150 objects) one after another before it is ready:
 * on three one-vCPU guests of a two-core host the first server's step took 476-644 s even when it
 * started alone, too close to 600 s (three starting at once were not ready after 20 minutes).
 */
export const EMULATED_API_START_TIMEOUT_SECONDS = 1800;

/** Seconds an API server keeps serving after it started to shut down (and failed /readyz). */
export const API_SHUTDOWN_DELAY_SECONDS = 15;

/**
 * The API server's AuthenticationConfiguration: anonymous requests are allowed for the health
 * endpoints only (what the load balancer and the readiness probes ask), everything else needs
 * a client certificate or a token.
 */
export function authenticationConfig(): Record<string, unknown> {
  return {
    apiVersion: "apiserver.config.k8s.io/v1",
    kind: "AuthenticationConfiguration",
    anonymous: {
      enabled: true,
      conditions: [{ path: "/healthz" }, { path: "/livez" }, { path: "/readyz" }],
    },
  };
}

export function renderAuthenticationConfig(): string {
  return stringify(authenticationConfig());
}

export function apiServerUnit(args: ApiServerArgs): ServiceUnit {
  return {
    // The node's own etcd member first: a server that starts before its storage answers exits
    // when its etcd dial times out, and systemd starts it again every few seconds, which at boot
    // on an emulated guest takes the CPU etcd needs to come up.
    unit: {
      ...unitBase("Kubernetes API server", ["network-online.target", "etcd.service"]),
      wants: ["network-online.target", "etcd.service"],
    },
    service: {
      type: "notify",
      // READY=1 comes once it serves, and no start timeout ends a slow start: at boot, with
      // every daemon of an emulated guest starting at once, a server still starting was killed
      // and started over from nothing. api-ready.sh bounds how long a step waits instead.
      timeoutStartSec: "infinity",
      execStart: apiServerCommand(args),
      // Room for the shutdown delay and the requests in flight after it.
      timeoutStopSec: API_SHUTDOWN_DELAY_SECONDS + 60,
      limitNoFile: 65536,
      cpuWeight: CONTROL_PLANE_CPU_WEIGHT,
      logsDirectory: ["kubernetes"],
    },
  };
}

export function renderApiServerUnit(args: ApiServerArgs): string {
  return renderServiceUnit(apiServerUnit(args));
}

/**
 * What the API server records: nothing for the noisy read-only health and watch traffic of
 * system components, metadata only for Secrets, ConfigMaps and tokens (their bodies would put
 * credentials in the log), and full request bodies for every other write.
 */
export function auditPolicy(): Record<string, unknown> {
  return {
    apiVersion: "audit.k8s.io/v1",
    kind: "Policy",
    omitStages: ["RequestReceived"],
    rules: [
      {
        level: "None",
        nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version", "/metrics"],
      },
      {
        level: "None",
        users: ["system:kube-proxy"],
        verbs: ["watch"],
        resources: [{ group: "", resources: ["endpoints", "services", "services/status"] }],
      },
      {
        level: "None",
        userGroups: ["system:nodes"],
        verbs: ["get"],
        resources: [{ group: "", resources: ["nodes", "nodes/status"] }],
      },
      {
        // Node heartbeats (kube-node-lease) and leader elections (kube-system) renew leases
        // every few seconds.
        level: "None",
        verbs: ["get", "update"],
        resources: [{ group: "coordination.k8s.io", resources: ["leases"] }],
      },
      {
        level: "None",
        resources: [
          { group: "", resources: ["events"] },
          { group: "events.k8s.io", resources: ["events"] },
        ],
      },
      {
        level: "Metadata",
        resources: [
          { group: "", resources: ["secrets", "configmaps", "serviceaccounts/token"] },
          { group: "authentication.k8s.io", resources: ["tokenreviews"] },
        ],
      },
      {
        level: "Request",
        verbs: ["get", "list", "watch"],
      },
      {
        level: "RequestResponse",
        verbs: ["create", "update", "patch", "delete", "deletecollection"],
      },
      { level: "Metadata" },
    ],
  };
}

export function renderAuditPolicy(): string {
  return stringify(auditPolicy());
}

export interface ControllerManagerArgs {
  readonly plan: AddressPlan;
  /** The `--cluster-name` prefix of cloud resources and of the cluster signing. @default "hardway" */
  readonly clusterName?: string;
  /** @default the controller manager's own (15 s lease, 10 s to renew, 2 s retry) */
  readonly leaderElection?: LeaderElectionTiming;
}

/**
 * kube-controller-manager. Node pod CIDRs are pinned by the address plan (bridge CNI config and
 * host routes) or handed out by Cilium's own IPAM, so the node IPAM controller stays off
 * (`--allocate-node-cidrs=false`): it would otherwise assign /24s that disagree with the routes.
 */
export function controllerManagerCommand(args: ControllerManagerArgs): string[] {
  const kubeconfig = NODE_PATHS.kubeconfigs.controllerManager;
  return [
    `${BIN_DIR}/kube-controller-manager`,
    ...flags({
      "bind-address": "127.0.0.1",
      "cluster-name": args.clusterName ?? "hardway",
      "cluster-cidr": args.plan.clusterCidr,
      "allocate-node-cidrs": false,
      "service-cluster-ip-range": args.plan.serviceCidr,
      "cluster-signing-cert-file": CA_FILES["kubernetes-ca"].cert,
      "cluster-signing-key-file": CA_FILES["kubernetes-ca"].key,
      "root-ca-file": CA_FILES["kubernetes-ca"].cert,
      "service-account-private-key-file": NODE_PATHS.serviceAccountPrivateKey,
      "use-service-account-credentials": true,
      kubeconfig,
      "authentication-kubeconfig": kubeconfig,
      "authorization-kubeconfig": kubeconfig,
      "client-ca-file": CA_FILES["kubernetes-ca"].cert,
      "requestheader-client-ca-file": CA_FILES["front-proxy-ca"].cert,
      "leader-elect": electsLeader(args.plan),
      ...(args.leaderElection === undefined || !electsLeader(args.plan)
        ? {}
        : {
            "leader-elect-lease-duration": `${args.leaderElection.leaseDurationSeconds}s`,
            "leader-elect-renew-deadline": `${args.leaderElection.renewDeadlineSeconds}s`,
            "leader-elect-retry-period": `${args.leaderElection.retryPeriodSeconds}s`,
          }),
      profiling: false,
      v: 2,
    }),
  ];
}

export function controllerManagerUnit(args: ControllerManagerArgs): ServiceUnit {
  return {
    unit: unitBase("Kubernetes controller manager", [
      "network-online.target",
      "kube-apiserver.service",
    ]),
    service: { execStart: controllerManagerCommand(args) },
  };
}

export function renderControllerManagerUnit(args: ControllerManagerArgs): string {
  return renderServiceUnit(controllerManagerUnit(args));
}

export interface SchedulerArgs {
  readonly plan: AddressPlan;
  /** @default the scheduler's own (15 s lease, 10 s to renew, 2 s retry) */
  readonly leaderElection?: LeaderElectionTiming;
}

export function schedulerConfiguration(args: SchedulerArgs): Record<string, unknown> {
  const { leaderElection } = args;
  return {
    apiVersion: "kubescheduler.config.k8s.io/v1",
    kind: "KubeSchedulerConfiguration",
    clientConnection: { kubeconfig: NODE_PATHS.kubeconfigs.scheduler },
    leaderElection: {
      leaderElect: electsLeader(args.plan),
      ...(leaderElection === undefined || !electsLeader(args.plan)
        ? {}
        : {
            leaseDuration: `${leaderElection.leaseDurationSeconds}s`,
            renewDeadline: `${leaderElection.renewDeadlineSeconds}s`,
            retryPeriod: `${leaderElection.retryPeriodSeconds}s`,
          }),
    },
    // The debug handlers serve profiles to anyone who may GET /debug/pprof: off.
    enableProfiling: false,
  };
}

export function renderSchedulerConfiguration(args: SchedulerArgs): string {
  return stringify(schedulerConfiguration(args));
}

export function schedulerCommand(): string[] {
  const kubeconfig = NODE_PATHS.kubeconfigs.scheduler;
  return [
    `${BIN_DIR}/kube-scheduler`,
    ...flags({
      config: NODE_PATHS.schedulerConfig,
      "bind-address": "127.0.0.1",
      "authentication-kubeconfig": kubeconfig,
      "authorization-kubeconfig": kubeconfig,
      v: 2,
    }),
  ];
}

export function schedulerUnit(): ServiceUnit {
  return {
    unit: unitBase("Kubernetes scheduler", ["network-online.target", "kube-apiserver.service"]),
    service: { execStart: schedulerCommand() },
  };
}

export function renderSchedulerUnit(): string {
  return renderServiceUnit(schedulerUnit());
}
