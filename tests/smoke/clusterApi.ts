/**
 * The few cluster and host operations the smoke checks need. The checks are written against
 * this interface only, so their verdicts are tested with fakes; kubectlClusterApi.ts is the one
 * real implementation.
 */

/** A Kubernetes object as `kubectl apply` takes it. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly [field: string]: unknown;
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface HttpResult {
  readonly status: number;
  readonly body: string;
}

export interface NodeInfo {
  readonly name: string;
  readonly ready: boolean;
  /** The Ready condition's reason and message, e.g. "KubeletNotReady: container runtime …". */
  readonly readyDetail: string;
}

export interface PodInfo {
  readonly phase: string;
  /** Every container is ready. */
  readonly ready: boolean;
  readonly podIp?: string;
  readonly nodeName?: string;
  /** Why a container is waiting, e.g. "ImagePullBackOff"; shown when a wait times out. */
  readonly waitingReason?: string;
}

export interface ServiceInfo {
  readonly clusterIp?: string;
  /** status.loadBalancer.ingress[].ip */
  readonly loadBalancerIps: readonly string[];
}

export interface ClaimInfo {
  /** Pending, Bound or Lost. */
  readonly phase: string;
  readonly storageClassName?: string;
}

export interface ClusterApi {
  getNodes(): Promise<readonly NodeInfo[]>;
  getPod(namespace: string, name: string): Promise<PodInfo | undefined>;
  getService(namespace: string, name: string): Promise<ServiceInfo | undefined>;
  getClaim(namespace: string, name: string): Promise<ClaimInfo | undefined>;
  /** Creates or updates the objects; rejects when the API server refuses any of them. */
  apply(objects: readonly KubeObject[]): Promise<void>;
  /** Deletes the objects; objects already gone are not an error. */
  delete(objects: readonly KubeObject[]): Promise<void>;
  /** Runs a command in a pod's (first) container. */
  exec(namespace: string, pod: string, command: readonly string[]): Promise<CommandResult>;
  /** An HTTP GET from the host running the checks, i.e. from outside the cluster. */
  httpGet(url: string, timeoutMs: number): Promise<HttpResult>;
  /** Runs a shell command on a VM as the stack's SSH user. */
  sshExec(host: string, command: string): Promise<CommandResult>;
}
