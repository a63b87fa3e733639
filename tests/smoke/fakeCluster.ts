/**
 * An in-memory ClusterApi that behaves like a healthy cluster until a test breaks one thing.
 * It keeps the objects applied and deleted, so tests also prove that checks clean up.
 */
import { ENCRYPTED_VALUE_PREFIX } from "../../components/pki/encryption";
import {
  ClaimInfo,
  ClusterApi,
  CommandResult,
  HttpResult,
  KubeObject,
  NodeInfo,
  PodInfo,
  ServiceInfo,
} from "./clusterApi";
import { Clock, SmokeContext } from "./checks";
import { StackNode } from "./stackOutputs";

export const FAKE_NODES: Record<string, StackNode> = {
  gateway: { ip: "192.168.234.10", role: "gateway", mac: "52:54:c0:a8:ea:0a" },
  control0: { ip: "192.168.234.11", role: "control", mac: "52:54:c0:a8:ea:0b" },
  worker0: { ip: "192.168.234.21", role: "worker", mac: "52:54:c0:a8:ea:15" },
  worker1: { ip: "192.168.234.22", role: "worker", mac: "52:54:c0:a8:ea:16" },
};

const API_SERVICE_IP = "10.32.0.1";

const ok = (stdout: string): CommandResult => ({ code: 0, stdout, stderr: "" });

export class FakeCluster implements ClusterApi {
  nodes: NodeInfo[] = ["control0", "worker0", "worker1"].map((name) => ({
    name,
    ready: true,
    readyDetail: "KubeletReady: kubelet is posting ready status",
  }));
  /** What MetalLB assigns to a LoadBalancer Service; undefined: nothing, ever. */
  loadBalancerIp: string | undefined = "192.168.234.200";
  claimPhase = "Bound";
  /** What nslookup inside a pod answers for kubernetes.default. */
  dnsAnswer = API_SERVICE_IP;
  podNetworkWorks = true;
  /** When set, pods never become ready and report this reason. */
  podWaitingReason: string | undefined;
  /** The raw bytes etcd holds for a Secret; by default what secretbox encryption writes. */
  etcdValue: (plaintext: string) => string = () =>
    `${ENCRYPTED_VALUE_PREFIX}\u0001\u00ff ciphertext`;
  failDeletes = false;

  readonly applied: KubeObject[] = [];
  readonly deleted: KubeObject[] = [];
  readonly sshCommands: { host: string; command: string }[] = [];
  private readonly live = new Map<string, KubeObject>();
  private readonly podIps = new Map<string, string>();

  private key(kind: string, namespace: string | undefined, name: string): string {
    return `${kind}/${namespace ?? ""}/${name}`;
  }

  private find(kind: string, namespace: string, name: string): KubeObject | undefined {
    return this.live.get(this.key(kind, namespace, name));
  }

  private podsByIp(ip: string): KubeObject | undefined {
    const name = [...this.podIps.entries()].find(([, podIp]) => podIp === ip)?.[0];
    return name === undefined ? undefined : this.live.get(name);
  }

  liveObjects(): KubeObject[] {
    return [...this.live.values()];
  }

  getNodes(): Promise<readonly NodeInfo[]> {
    return Promise.resolve(this.nodes);
  }

  getPod(namespace: string, name: string): Promise<PodInfo | undefined> {
    const key = this.key("Pod", namespace, name);
    const pod = this.live.get(key);
    if (pod === undefined) {
      return Promise.resolve(undefined);
    }
    if (this.podWaitingReason !== undefined) {
      return Promise.resolve({
        phase: "Pending",
        ready: false,
        waitingReason: this.podWaitingReason,
      });
    }
    const spec = pod.spec as { nodeName?: string };
    return Promise.resolve({
      phase: "Running",
      ready: true,
      podIp: this.podIps.get(key),
      nodeName: spec.nodeName ?? "worker0",
    });
  }

  getService(namespace: string, name: string): Promise<ServiceInfo | undefined> {
    if (namespace === "default" && name === "kubernetes") {
      return Promise.resolve({ clusterIp: API_SERVICE_IP, loadBalancerIps: [] });
    }
    const service = this.find("Service", namespace, name);
    return Promise.resolve(
      service === undefined
        ? undefined
        : {
            clusterIp: "10.32.0.50",
            loadBalancerIps: this.loadBalancerIp === undefined ? [] : [this.loadBalancerIp],
          },
    );
  }

  getClaim(namespace: string, name: string): Promise<ClaimInfo | undefined> {
    const claim = this.find("PersistentVolumeClaim", namespace, name);
    return Promise.resolve(
      claim === undefined ? undefined : { phase: this.claimPhase, storageClassName: "nfs-client" },
    );
  }

  apply(objects: readonly KubeObject[]): Promise<void> {
    for (const object of objects) {
      const key = this.key(object.kind, object.metadata.namespace, object.metadata.name);
      this.applied.push(object);
      this.live.set(key, object);
      if (object.kind === "Pod" && !this.podIps.has(key)) {
        this.podIps.set(key, `10.200.${this.podIps.size}.5`);
      }
    }
    return Promise.resolve();
  }

  delete(objects: readonly KubeObject[]): Promise<void> {
    if (this.failDeletes) {
      return Promise.reject(new Error("the API server is gone"));
    }
    for (const object of objects) {
      this.deleted.push(object);
      const key = this.key(object.kind, object.metadata.namespace, object.metadata.name);
      this.live.delete(key);
      if (object.kind === "Namespace") {
        for (const [other, live] of this.live) {
          if (live.metadata.namespace === object.metadata.name) {
            this.live.delete(other);
          }
        }
      }
    }
    return Promise.resolve();
  }

  exec(namespace: string, pod: string, command: readonly string[]): Promise<CommandResult> {
    const [program, ...args] = command;
    if (program === "nslookup") {
      return Promise.resolve(
        ok(
          "Server:\t\t10.32.0.10\nAddress:\t10.32.0.10#53\n\n" +
            `Name:\tkubernetes.default.svc.cluster.local\nAddress: ${this.dnsAnswer}\n`,
        ),
      );
    }
    if (program === "curl") {
      const url = new URL(args[args.length - 1]);
      const target = this.podsByIp(url.hostname);
      if (!this.podNetworkWorks || target === undefined) {
        return Promise.resolve({ code: 28, stdout: "", stderr: "curl: (28) Connection timed out" });
      }
      return Promise.resolve(ok(target.metadata.name));
    }
    if (program === "sh" && this.find("Pod", namespace, pod) !== undefined) {
      const token = /echo (\S+) >/.exec(args[1])?.[1] ?? "";
      return Promise.resolve(ok(`${token}\n`));
    }
    return Promise.resolve({ code: 127, stdout: "", stderr: `${program}: not found` });
  }

  httpGet(url: string): Promise<HttpResult> {
    const host = new URL(url).hostname;
    const service = [...this.live.values()].find((o) => o.kind === "Service");
    if (service === undefined || host !== this.loadBalancerIp) {
      return Promise.reject(new Error(`connect EHOSTUNREACH ${host}:80`));
    }
    const selector = (service.spec as { selector: Record<string, string> }).selector;
    return Promise.resolve({ status: 200, body: selector["hardway-smoke"] });
  }

  sshExec(host: string, command: string): Promise<CommandResult> {
    this.sshCommands.push({ host, command });
    const secret = [...this.live.values()].find((o) => o.kind === "Secret");
    if (secret === undefined) {
      return Promise.resolve(ok(""));
    }
    const plaintext = (secret.stringData as { value: string }).value;
    return Promise.resolve(ok(Buffer.from(this.etcdValue(plaintext), "latin1").toString("base64")));
  }
}

/** A clock whose sleeps pass instantly, so bounded waits run out in microseconds. */
export function fakeClock(): Clock {
  let now = 1_700_000_000_000;
  return {
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
  };
}

export function fakeContext(lines: string[] = []): SmokeContext {
  return {
    namespace: "hardway-smoke-test",
    nodes: FAKE_NODES,
    metallbPool: { first: "192.168.234.200", last: "192.168.234.250" },
    image: "agnhost",
    timeouts: {
      podReadyMs: 50,
      claimBoundMs: 50,
      loadBalancerMs: 50,
      httpMs: 50,
      pollIntervalMs: 10,
    },
    clock: fakeClock(),
    log: (line) => lines.push(line),
  };
}
