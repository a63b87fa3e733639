/**
 * The e2e run's handle on a converged stack: its outputs written to files (kubeconfig, SSH key,
 * CA), and kubectl, ssh and etcdctl against it. A loaded TCG guest can miss a TLS handshake or an
 * SSH banner now and then; requests that never reached the cluster are asked again.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultVersions } from "../../components/config/defaults";
import { CA_FILES, certFiles } from "../../components/kubernetes/paths";
import { EngineStack } from "../engine/engine";
import { Polling, realClock, waitFor } from "../smoke/checks";
import { runCommand } from "../smoke/run";
import { ECHO_IMAGE } from "./ociArchives";

export const log = (line: string) => console.log(`[e2e ${new Date().toISOString()}] ${line}`);

/** How the checks poll for a cluster that is still settling. */
export const POLLING: Polling = { clock: realClock, timeouts: { pollIntervalMs: 5_000 } };

/**
 * Whether kubectl failed before its request reached the API server (so asking again cannot do
 * anything twice): it could not connect, or the TLS handshake timed out. Pure.
 */
export function neverReachedServer(stderr: string): boolean {
  return /Unable to connect to the server|TLS handshake timeout/.test(stderr);
}

/** Whether ssh itself failed (exit 255): the command did not run. Pure. */
export const SSH_FAILED = 255;

interface Outputs {
  readonly kubeconfig: string;
  readonly sshPrivateKey: string;
  readonly caCertPem: string;
  readonly nodes: Record<string, { ip: string; role: string; mac: string }>;
}

/** How long a request that never reached the cluster is asked again. */
const RETRY_MS = 180_000;

export class Cluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-e2e-cluster-"));
  readonly kubectlBin: string;
  outputs!: Outputs;

  constructor(
    readonly stack: EngineStack,
    mirror: string,
  ) {
    // The kubectl of the cluster's own version, from the mirror (the distribution's is older).
    this.kubectlBin = path.join(
      mirror,
      "dl.k8s.io/release",
      `v${defaultVersions.kubernetes}`,
      "bin/linux/amd64/kubectl",
    );
    fs.chmodSync(this.kubectlBin, 0o755);
  }

  refreshOutputs(): void {
    const out = this.stack.must(["stack", "output", "--json", "--show-secrets"]);
    this.outputs = JSON.parse(out.stdout) as Outputs;
    fs.writeFileSync(path.join(this.dir, "kubeconfig"), this.outputs.kubeconfig, { mode: 0o600 });
    fs.writeFileSync(path.join(this.dir, "ssh-key"), this.outputs.sshPrivateKey, { mode: 0o600 });
    fs.writeFileSync(path.join(this.dir, "ca.crt"), this.outputs.caCertPem);
  }

  /** The API's URL through the VIP (the stack's `apiServer` output). */
  apiServerUrl(): URL {
    return new URL(
      JSON.parse(this.stack.must(["stack", "output", "apiServer", "--json"]).stdout) as string,
    );
  }

  /**
   * One anonymous request to an API server's health endpoint (`https://host/path`), the server
   * verified against the cluster CA: whether it answered `ok`, and what it answered.
   */
  async askHealth(url: string, maxSeconds: number): Promise<{ ok: boolean; answer: string }> {
    const result = await runCommand("curl", [
      "-sS",
      "--max-time",
      String(maxSeconds),
      "--cacert",
      path.join(this.dir, "ca.crt"),
      url,
    ]);
    return {
      ok: result.code === 0 && result.stdout.trim() === "ok",
      answer: `${result.stdout}${result.stderr}`,
    };
  }

  /** The control nodes' names, in plan order. */
  controls(): string[] {
    return Object.entries(this.outputs.nodes)
      .filter(([, n]) => n.role === "control")
      .map(([name]) => name)
      .sort();
  }

  /** The nodes that run a kubelet (control nodes and workers), in plan order. */
  kubeletNodes(): string[] {
    const workers = Object.entries(this.outputs.nodes)
      .filter(([, n]) => n.role === "worker")
      .map(([name]) => name)
      .sort();
    return [...this.controls(), ...workers];
  }

  async kubectl(args: readonly string[], input?: string, timeoutMs = 120_000): Promise<string> {
    const started = Date.now();
    for (;;) {
      const result = await runCommand(
        this.kubectlBin,
        ["--kubeconfig", path.join(this.dir, "kubeconfig"), ...args],
        { input, timeoutMs },
      );
      if (result.code === 0) {
        return result.stdout;
      }
      if (!neverReachedServer(result.stderr) || Date.now() - started > RETRY_MS) {
        throw new Error(`kubectl ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
      }
      log(`kubectl ${args[0]}: ${result.stderr.trim()}; asking again`);
      await new Promise((resolve) => setTimeout(resolve, 5_000));
    }
  }

  async ssh(node: string, command: string, timeoutMs = 120_000): Promise<string> {
    const ip = this.outputs.nodes[node].ip;
    const started = Date.now();
    for (;;) {
      const result = await runCommand(
        "ssh",
        [
          "-i",
          path.join(this.dir, "ssh-key"),
          "-o",
          "BatchMode=yes",
          "-o",
          "StrictHostKeyChecking=no",
          "-o",
          "UserKnownHostsFile=/dev/null",
          "-o",
          "LogLevel=ERROR",
          "-o",
          "ConnectTimeout=30",
          `hardway@${ip}`,
          command,
        ],
        { timeoutMs },
      );
      if (result.code === 0) {
        return result.stdout;
      }
      if (result.code !== SSH_FAILED || Date.now() - started > RETRY_MS) {
        throw new Error(`ssh ${node} ${command} exited ${result.code}: ${result.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5_000));
    }
  }

  /**
   * etcdctl on control0. Its defaults (2 s to connect, 5 s per request) are too short for a
   * loaded TCG guest, where one TLS handshake can take longer: wait longer, and ask again for
   * up to three minutes (every request the checks make is a get, or a put of the same value).
   */
  async etcdctl(args: string): Promise<string> {
    const client = certFiles("etcd-healthcheck-client");
    const command = `sudo /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=${CA_FILES["etcd-ca"].cert} --cert=${client.cert} --key=${client.key} --dial-timeout=30s --command-timeout=60s ${args}`;
    return waitFor(POLLING, `etcdctl ${args}`, 180_000, async () => {
      try {
        return { done: true, value: await this.ssh("control0", command) };
      } catch (error) {
        return { done: false, state: `failing: ${(error as Error).message}` };
      }
    });
  }

  dispose(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A one-replica Deployment of the echo image pinned to one node (tolerating the control-plane
 * taint): a drain moves its pod off and it comes back once the node is schedulable again, as a
 * bare pod would not (kubectl drain refuses pods no controller re-creates).
 */
export function pinnedDeployment(name: string, node: string, command?: string[]) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeSelector: { "kubernetes.io/hostname": node },
          tolerations: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
          // busybox as PID 1 ignores SIGTERM: do not wait the default 30 s at each drain.
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name,
              image: ECHO_IMAGE,
              imagePullPolicy: "Never",
              ...(command ? { command } : {}),
            },
          ],
        },
      },
    },
  };
}

/** The name, uid, node and address of the one Running pod of a Deployment (`app=<name>`). */
export async function podOf(
  cluster: Cluster,
  app: string,
): Promise<{ name: string; uid: string; node: string; ip: string } | undefined> {
  const pods = JSON.parse(
    await cluster.kubectl(["get", "pods", "-l", `app=${app}`, "-o", "json"]),
  ) as {
    items: {
      metadata: { name: string; uid: string; deletionTimestamp?: string };
      spec: { nodeName?: string };
      status: { phase?: string; podIP?: string };
    }[];
  };
  const running = pods.items.find(
    (p) => p.status.phase === "Running" && p.metadata.deletionTimestamp === undefined,
  );
  return running === undefined
    ? undefined
    : {
        name: running.metadata.name,
        uid: running.metadata.uid,
        node: running.spec.nodeName ?? "",
        ip: running.status.podIP ?? "",
      };
}
