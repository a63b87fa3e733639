/**
 * The smoke checks: what a freshly converged cluster must do, as pure logic over ClusterApi.
 * Every check creates its own objects in the run's namespace and deletes them in a `finally`;
 * every wait is bounded by SmokeTimeouts, so a broken cluster fails in minutes, not never.
 */
import { BIN_DIR, CA_FILES, certFiles } from "../../components/kubernetes/paths";
import { parseAddress } from "../../components/network/ipv4";
import { ENCRYPTED_VALUE_PREFIX } from "../../components/pki/encryption";
import { ClusterApi, KubeObject, PodInfo } from "./clusterApi";
import { StackNode } from "./stackOutputs";

export interface SmokeTimeouts {
  /** Until a test pod runs; includes the first image pull on a cold cluster. */
  readonly podReadyMs: number;
  readonly claimBoundMs: number;
  readonly loadBalancerMs: number;
  /** Until the LoadBalancer answers from the host once it has an address (ARP must settle). */
  readonly httpMs: number;
  readonly pollIntervalMs: number;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface SmokeContext {
  /** Created by runSmoke before the checks and deleted after them. */
  readonly namespace: string;
  /** The stack's `nodes` output. */
  readonly nodes: Readonly<Record<string, StackNode>>;
  /** The MetalLB pool, inclusive. */
  readonly metallbPool: { readonly first: string; readonly last: string };
  /** One image for every test pod: agnhost serves HTTP and carries nslookup and curl. */
  readonly image: string;
  readonly timeouts: SmokeTimeouts;
  readonly clock: Clock;
  /** Says what a check is doing, for the person watching. */
  readonly log: (line: string) => void;
}

/** A check's verdict is "passed" when `run` resolves (with a summary) and "failed" when it throws. */
export interface SmokeCheck {
  readonly name: string;
  run(api: ClusterApi, ctx: SmokeContext): Promise<string>;
}

export class CheckFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckFailed";
  }
}

export const AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.52";
const HTTP_PORT = 8080;

type Probe<T> =
  { readonly done: true; readonly value: T } | { readonly done: false; readonly state: string };

/** What polling needs of a context: a clock and how long to wait between probes. */
export interface Polling {
  readonly clock: Clock;
  readonly timeouts: Pick<SmokeTimeouts, "pollIntervalMs">;
}

/** Polls until `probe` is done; past the deadline it fails with what it last saw. */
export async function waitFor<T>(
  ctx: Polling,
  what: string,
  timeoutMs: number,
  probe: () => Promise<Probe<T>>,
): Promise<T> {
  const deadline = ctx.clock.now() + timeoutMs;
  for (;;) {
    const result = await probe();
    if (result.done) {
      return result.value;
    }
    const remaining = deadline - ctx.clock.now();
    if (remaining <= 0) {
      throw new CheckFailed(`${what}: still ${result.state} after ${seconds(timeoutMs)}`);
    }
    await ctx.clock.sleep(Math.min(ctx.timeouts.pollIntervalMs, remaining));
  }
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** Nodes that run a kubelet and so must register with the API server. */
export function kubeletNodeNames(nodes: Readonly<Record<string, StackNode>>): string[] {
  return Object.entries(nodes)
    .filter(([, node]) => node.role !== "gateway")
    .map(([name]) => name);
}

export function inPool(ip: string, pool: SmokeContext["metallbPool"]): boolean {
  let address: number;
  try {
    address = parseAddress(ip);
  } catch {
    return false;
  }
  return address >= parseAddress(pool.first) && address <= parseAddress(pool.last);
}

/** The addresses nslookup gives for the name it resolved (the server's own address comes first). */
export function resolvedAddresses(nslookupOutput: string): string[] {
  const lines = nslookupOutput.split("\n").map((l) => l.trim());
  const nameAt = lines.findIndex((l) => l.startsWith("Name:"));
  if (nameAt < 0) {
    return [];
  }
  return lines
    .slice(nameAt)
    .map((l) => /^Address:\s*([0-9.]+)/.exec(l)?.[1])
    .filter((a): a is string => a !== undefined);
}

function testPod(
  ctx: SmokeContext,
  name: string,
  options: { nodeName?: string; claim?: string } = {},
): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ctx.namespace, labels: { "hardway-smoke": name } },
    spec: {
      ...(options.nodeName === undefined ? {} : { nodeName: options.nodeName }),
      // Control nodes carry a NoSchedule taint; a check pinned to one must still run there.
      tolerations: [{ operator: "Exists" }],
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: "agnhost",
          image: ctx.image,
          args: ["netexec", `--http-port=${HTTP_PORT}`],
          ports: [{ containerPort: HTTP_PORT }],
          ...(options.claim === undefined
            ? {}
            : { volumeMounts: [{ name: "data", mountPath: "/data" }] }),
        },
      ],
      ...(options.claim === undefined
        ? {}
        : { volumes: [{ name: "data", persistentVolumeClaim: { claimName: options.claim } }] }),
    },
  };
}

async function podReady(api: ClusterApi, ctx: SmokeContext, name: string): Promise<PodInfo> {
  ctx.log(`waiting for pod ${name} to run`);
  return waitFor(ctx, `pod ${name}`, ctx.timeouts.podReadyMs, async () => {
    const pod = await api.getPod(ctx.namespace, name);
    if (pod !== undefined && pod.ready && pod.podIp !== undefined) {
      return { done: true, value: pod };
    }
    const state =
      pod === undefined
        ? "absent"
        : `${pod.phase}${pod.waitingReason ? ` (${pod.waitingReason})` : ""}`;
    return { done: false, state };
  });
}

/** Applies the objects, runs the body and deletes them whatever happened. */
async function withObjects<T>(
  api: ClusterApi,
  ctx: SmokeContext,
  objects: readonly KubeObject[],
  body: () => Promise<T>,
): Promise<T> {
  let cleanupError: Error | undefined;
  let value: T;
  try {
    ctx.log(`creating ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`);
    await api.apply(objects);
    value = await body();
  } finally {
    cleanupError = await api.delete(objects).then(
      () => undefined,
      (err: Error) => err,
    );
    if (cleanupError !== undefined) {
      ctx.log(`cleanup failed: ${cleanupError.message}`);
    }
  }
  // Only a check that passed fails for its cleanup; otherwise its own failure is the news.
  if (cleanupError !== undefined) {
    throw new CheckFailed(`cleanup failed: ${cleanupError.message}`);
  }
  return value;
}

export const nodesReady: SmokeCheck = {
  name: "nodes-ready",
  async run(api, ctx) {
    const expected = kubeletNodeNames(ctx.nodes);
    ctx.log(`listing nodes; expecting ${expected.join(", ")}`);
    const nodes = await api.getNodes();
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const problems = expected.flatMap((name) => {
      const node = byName.get(name);
      if (node === undefined) {
        return [`${name} is not registered`];
      }
      return node.ready ? [] : [`${name} is NotReady (${node.readyDetail})`];
    });
    if (expected.length === 0) {
      problems.push("the stack output lists no control or worker nodes");
    }
    if (problems.length > 0) {
      throw new CheckFailed(problems.join("; "));
    }
    return `${expected.length} nodes Ready: ${expected.join(", ")}`;
  },
};

export const clusterDns: SmokeCheck = {
  name: "cluster-dns",
  async run(api, ctx) {
    const pod = testPod(ctx, "smoke-dns");
    return withObjects(api, ctx, [pod], async () => {
      await podReady(api, ctx, pod.metadata.name);
      const service = await api.getService("default", "kubernetes");
      if (service?.clusterIp === undefined) {
        throw new CheckFailed("the default/kubernetes Service has no cluster IP");
      }
      ctx.log("resolving kubernetes.default inside the pod");
      const result = await api.exec(ctx.namespace, pod.metadata.name, [
        "nslookup",
        "kubernetes.default",
      ]);
      const addresses = resolvedAddresses(result.stdout);
      if (result.code !== 0 || !addresses.includes(service.clusterIp)) {
        throw new CheckFailed(
          `kubernetes.default resolved to [${addresses.join(", ")}], expected ${service.clusterIp} ` +
            `(nslookup exit ${result.code}: ${(result.stdout + result.stderr).trim()})`,
        );
      }
      return `kubernetes.default resolves to ${service.clusterIp}`;
    });
  },
};

/** Two kubelet nodes, workers first: control nodes only when there are too few workers. */
export function twoNodes(nodes: Readonly<Record<string, StackNode>>): [string, string] {
  const names = Object.entries(nodes);
  const ordered = [
    ...names.filter(([, n]) => n.role === "worker"),
    ...names.filter(([, n]) => n.role === "control"),
  ].map(([name]) => name);
  if (ordered.length < 2) {
    throw new CheckFailed(
      `pod-to-pod traffic needs two kubelet nodes; the stack has ${ordered.length}`,
    );
  }
  return [ordered[0], ordered[1]];
}

export const podToPod: SmokeCheck = {
  name: "pod-to-pod",
  async run(api, ctx) {
    const [first, second] = twoNodes(ctx.nodes);
    const pods = [
      testPod(ctx, "smoke-peer-a", { nodeName: first }),
      testPod(ctx, "smoke-peer-b", { nodeName: second }),
    ];
    return withObjects(api, ctx, pods, async () => {
      const a = await podReady(api, ctx, pods[0].metadata.name);
      const b = await podReady(api, ctx, pods[1].metadata.name);
      if (a.nodeName === b.nodeName) {
        throw new CheckFailed(`both pods landed on ${a.nodeName ?? "an unknown node"}`);
      }
      const pairs: [string, PodInfo, string, PodInfo][] = [
        [pods[0].metadata.name, a, pods[1].metadata.name, b],
        [pods[1].metadata.name, b, pods[0].metadata.name, a],
      ];
      for (const [fromName, from, toName, to] of pairs) {
        const url = `http://${to.podIp ?? ""}:${HTTP_PORT}/hostname`;
        ctx.log(
          `${fromName} on ${from.nodeName ?? "?"} -> ${toName} on ${to.nodeName ?? "?"}: GET ${url}`,
        );
        const result = await api.exec(ctx.namespace, fromName, [
          "curl",
          "-sS",
          "--max-time",
          "5",
          url,
        ]);
        if (result.code !== 0 || result.stdout.trim() !== toName) {
          throw new CheckFailed(
            `${fromName} (${from.nodeName ?? "?"}) could not reach ${toName} (${to.nodeName ?? "?"}) at ${url}: ` +
              `exit ${result.code}, ${(result.stdout + result.stderr).trim() || "no output"}`,
          );
        }
      }
      return `pods on ${a.nodeName ?? first} and ${b.nodeName ?? second} reach each other`;
    });
  },
};

export const loadBalancer: SmokeCheck = {
  name: "load-balancer",
  async run(api, ctx) {
    const pod = testPod(ctx, "smoke-lb");
    const service: KubeObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "smoke-lb", namespace: ctx.namespace },
      spec: {
        type: "LoadBalancer",
        selector: { "hardway-smoke": pod.metadata.name },
        ports: [{ port: 80, targetPort: HTTP_PORT }],
      },
    };
    return withObjects(api, ctx, [pod, service], async () => {
      await podReady(api, ctx, pod.metadata.name);
      ctx.log("waiting for MetalLB to assign an address");
      const ip = await waitFor(
        ctx,
        "LoadBalancer address",
        ctx.timeouts.loadBalancerMs,
        async () => {
          const found = await api.getService(ctx.namespace, service.metadata.name);
          const first = found?.loadBalancerIps[0];
          return first === undefined
            ? { done: false, state: "pending" }
            : { done: true, value: first };
        },
      );
      const pool = `${ctx.metallbPool.first}-${ctx.metallbPool.last}`;
      if (!inPool(ip, ctx.metallbPool)) {
        throw new CheckFailed(`the LoadBalancer got ${ip}, outside the MetalLB pool ${pool}`);
      }
      const url = `http://${ip}/hostname`;
      ctx.log(`GET ${url} from the host`);
      await waitFor(ctx, `GET ${url}`, ctx.timeouts.httpMs, async () => {
        try {
          const response = await api.httpGet(url, Math.min(5000, ctx.timeouts.httpMs));
          return response.status === 200 && response.body.trim() === pod.metadata.name
            ? { done: true, value: response }
            : { done: false, state: `answering ${response.status} "${response.body.trim()}"` };
        } catch (err) {
          return { done: false, state: `unreachable (${(err as Error).message})` };
        }
      });
      return `${ip} (pool ${pool}) answers from the host`;
    });
  },
};

export const persistentVolume: SmokeCheck = {
  name: "persistent-volume",
  async run(api, ctx) {
    const claim: KubeObject = {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      // No storageClassName: the claim must go to the default StorageClass.
      metadata: { name: "smoke-claim", namespace: ctx.namespace },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "16Mi" } } },
    };
    const pod = testPod(ctx, "smoke-volume", { claim: claim.metadata.name });
    // The pod is deleted before the claim, so the claim is not held open while it goes.
    return withObjects(api, ctx, [pod, claim], async () => {
      ctx.log("waiting for the claim to bind");
      const bound = await waitFor(
        ctx,
        `claim ${claim.metadata.name}`,
        ctx.timeouts.claimBoundMs,
        async () => {
          const found = await api.getClaim(ctx.namespace, claim.metadata.name);
          return found?.phase === "Bound"
            ? { done: true, value: found }
            : { done: false, state: found?.phase ?? "absent" };
        },
      );
      await podReady(api, ctx, pod.metadata.name);
      const token = `hardway-smoke-${ctx.clock.now()}`;
      ctx.log("writing a file to the volume and reading it back");
      const result = await api.exec(ctx.namespace, pod.metadata.name, [
        "sh",
        "-c",
        `echo ${token} > /data/smoke.txt && cat /data/smoke.txt`,
      ]);
      if (result.code !== 0 || result.stdout.trim() !== token) {
        throw new CheckFailed(
          `writing to the volume failed: exit ${result.code}, ${(result.stdout + result.stderr).trim()}`,
        );
      }
      return `claim bound (StorageClass ${bound.storageClassName ?? "?"}) and writable`;
    });
  },
};

/** Reads a key's raw value on a control node, base64-encoded so binary survives the SSH pipe. */
export function etcdGetCommand(key: string): string {
  const client = certFiles("etcd-healthcheck-client");
  return [
    "sudo",
    `${BIN_DIR}/etcdctl`,
    "--endpoints=https://127.0.0.1:2379",
    `--cacert=${CA_FILES["etcd-ca"].cert}`,
    `--cert=${client.cert}`,
    `--key=${client.key}`,
    "get",
    `'${key}'`,
    "--print-value-only",
    "|",
    "base64",
    "-w0",
  ].join(" ");
}

export const secretEncryption: SmokeCheck = {
  name: "secret-encrypted-at-rest",
  async run(api, ctx) {
    const control = Object.entries(ctx.nodes).find(([, n]) => n.role === "control");
    if (control === undefined) {
      throw new CheckFailed("the stack output lists no control node to read etcd on");
    }
    const [controlName, { ip }] = control;
    const plaintext = `hardway-smoke-plaintext-${ctx.clock.now()}`;
    const secret: KubeObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "smoke-secret", namespace: ctx.namespace },
      type: "Opaque",
      stringData: { value: plaintext },
    };
    return withObjects(api, ctx, [secret], async () => {
      const key = `/registry/secrets/${ctx.namespace}/${secret.metadata.name}`;
      ctx.log(`reading ${key} with etcdctl on ${controlName} (${ip})`);
      const result = await api.sshExec(ip, etcdGetCommand(key));
      if (result.code !== 0) {
        throw new CheckFailed(
          `etcdctl on ${controlName} failed: exit ${result.code}, ${result.stderr.trim()}`,
        );
      }
      const raw = Buffer.from(result.stdout.trim(), "base64").toString("latin1");
      if (raw === "") {
        throw new CheckFailed(`etcd has no value at ${key}`);
      }
      if (!raw.startsWith(ENCRYPTED_VALUE_PREFIX) || raw.includes(plaintext)) {
        throw new CheckFailed(
          `the Secret is stored unencrypted: the value starts with ${JSON.stringify(raw.slice(0, 40))}, ` +
            `not ${ENCRYPTED_VALUE_PREFIX}`,
        );
      }
      return `etcd holds the Secret as ${ENCRYPTED_VALUE_PREFIX}…`;
    });
  },
};

export const ALL_CHECKS: readonly SmokeCheck[] = [
  nodesReady,
  clusterDns,
  podToPod,
  loadBalancer,
  persistentVolume,
  secretEncryption,
];

export interface CheckResult {
  readonly name: string;
  readonly passed: boolean;
  readonly detail: string;
  readonly durationMs: number;
}

export interface SmokeReport {
  readonly passed: boolean;
  readonly results: readonly CheckResult[];
}

/**
 * Runs every check in its own namespace, prints a PASS/FAIL line per check and one overall, and
 * deletes the namespace afterwards whatever happened.
 */
export async function runSmoke(
  api: ClusterApi,
  ctx: SmokeContext,
  checks: readonly SmokeCheck[] = ALL_CHECKS,
): Promise<SmokeReport> {
  const namespace: KubeObject = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: ctx.namespace },
  };
  const results: CheckResult[] = [];
  try {
    ctx.log(`creating namespace ${ctx.namespace}`);
    await api.apply([namespace]);
    for (const check of checks) {
      ctx.log(`${check.name}: starting`);
      const started = ctx.clock.now();
      let passed = false;
      let detail: string;
      try {
        detail = await check.run(api, { ...ctx, log: (line) => ctx.log(`${check.name}: ${line}`) });
        passed = true;
      } catch (err) {
        detail = (err as Error).message;
      }
      const durationMs = ctx.clock.now() - started;
      results.push({ name: check.name, passed, detail, durationMs });
      ctx.log(`${passed ? "PASS" : "FAIL"} ${check.name} (${seconds(durationMs)}): ${detail}`);
    }
  } catch (err) {
    results.push({ name: "setup", passed: false, detail: (err as Error).message, durationMs: 0 });
    ctx.log(`FAIL setup: ${(err as Error).message}`);
  } finally {
    ctx.log(`deleting namespace ${ctx.namespace}`);
    await api.delete([namespace]).catch((err: Error) => {
      results.push({ name: "cleanup", passed: false, detail: err.message, durationMs: 0 });
      ctx.log(`FAIL cleanup: ${err.message}`);
    });
  }
  const failed = results.filter((r) => !r.passed);
  const passed = failed.length === 0;
  ctx.log(
    passed
      ? `SMOKE PASS: ${results.length} checks passed`
      : `SMOKE FAIL: ${failed.length} of ${results.length} failed: ${failed.map((r) => r.name).join(", ")}`,
  );
  return { passed, results };
}
