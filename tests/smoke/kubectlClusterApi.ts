/**
 * The real ClusterApi: `kubectl --kubeconfig <file>` for the cluster, `ssh -i <file>` for the
 * VMs and Node's http client for requests from the host. The kubeconfig and the SSH key are
 * secrets, so they live in a private temporary directory that is removed afterwards.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
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
import { runCommand } from "./run";

export interface Credentials {
  readonly kubeconfigFile: string;
  readonly sshKeyFile: string;
}

/** Writes the kubeconfig and SSH key to 0600 files, runs `body`, and removes them. */
export async function withCredentials<T>(
  secrets: { readonly kubeconfig: string; readonly sshPrivateKey: string },
  body: (credentials: Credentials) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-smoke-"));
  try {
    const kubeconfigFile = path.join(dir, "kubeconfig");
    const sshKeyFile = path.join(dir, "id");
    fs.writeFileSync(kubeconfigFile, secrets.kubeconfig, { mode: 0o600 });
    // ssh refuses a key without a final newline or with group/other permissions.
    const key = secrets.sshPrivateKey.endsWith("\n")
      ? secrets.sshPrivateKey
      : `${secrets.sshPrivateKey}\n`;
    fs.writeFileSync(sshKeyFile, key, { mode: 0o600 });
    return await body({ kubeconfigFile, sshKeyFile });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads `a.b.c` from parsed JSON without trusting its shape. */
function at(value: unknown, ...keys: (string | number)[]): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== "object") {
      return undefined;
    }
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}

function condition(object: unknown, type: string): unknown {
  return list(at(object, "status", "conditions")).find((c) => at(c, "type") === type);
}

export function nodeInfo(node: unknown): NodeInfo {
  const ready = condition(node, "Ready");
  return {
    name: text(at(node, "metadata", "name")) ?? "?",
    ready: at(ready, "status") === "True",
    readyDetail: ready
      ? `${text(at(ready, "reason")) ?? ""}: ${text(at(ready, "message")) ?? ""}`
      : "no Ready condition",
  };
}

export function podInfo(pod: unknown): PodInfo {
  const waiting = list(at(pod, "status", "containerStatuses"))
    .map((s) => text(at(s, "state", "waiting", "reason")))
    .find((r) => r !== undefined);
  return {
    phase: text(at(pod, "status", "phase")) ?? "Unknown",
    ready: at(condition(pod, "Ready"), "status") === "True",
    podIp: text(at(pod, "status", "podIP")),
    nodeName: text(at(pod, "spec", "nodeName")),
    waitingReason: waiting,
  };
}

export function serviceInfo(service: unknown): ServiceInfo {
  return {
    clusterIp: text(at(service, "spec", "clusterIP")),
    loadBalancerIps: list(at(service, "status", "loadBalancer", "ingress"))
      .map((i) => text(at(i, "ip")))
      .filter((ip): ip is string => ip !== undefined),
  };
}

export function claimInfo(claim: unknown): ClaimInfo {
  return {
    phase: text(at(claim, "status", "phase")) ?? "Pending",
    storageClassName: text(at(claim, "spec", "storageClassName")),
  };
}

export interface KubectlClusterApiOptions {
  readonly credentials: Credentials;
  /** The user cloud-init authorised the stack's key for. */
  readonly sshUser: string;
  /** Bound on every kubectl and ssh call, so a hung API server cannot hang the run. */
  readonly commandTimeoutMs?: number;
  /** @default "kubectl" from PATH */
  readonly kubectl?: string;
  /** @default "ssh" from PATH */
  readonly ssh?: string;
}

export class KubectlClusterApi implements ClusterApi {
  private readonly timeoutMs: number;

  constructor(private readonly options: KubectlClusterApiOptions) {
    this.timeoutMs = options.commandTimeoutMs ?? 120_000;
  }

  private async kubectl(args: readonly string[], input?: string): Promise<CommandResult> {
    return runCommand(
      this.options.kubectl ?? "kubectl",
      ["--kubeconfig", this.options.credentials.kubeconfigFile, ...args],
      { input, timeoutMs: this.timeoutMs },
    );
  }

  private async kubectlOk(args: readonly string[], input?: string): Promise<string> {
    const result = await this.kubectl(args, input);
    if (result.code !== 0) {
      throw new Error(`kubectl ${args.join(" ")} failed: ${result.stderr.trim()}`);
    }
    return result.stdout;
  }

  /** The object as JSON, or undefined when it does not exist. */
  private async getJson(kind: string, namespace: string, name: string): Promise<unknown> {
    const result = await this.kubectl(["get", kind, name, "-n", namespace, "-o", "json"]);
    if (result.code !== 0) {
      if (/NotFound/.test(result.stderr)) {
        return undefined;
      }
      throw new Error(`kubectl get ${kind} ${name} failed: ${result.stderr.trim()}`);
    }
    return JSON.parse(result.stdout) as unknown;
  }

  async getNodes(): Promise<readonly NodeInfo[]> {
    const nodes = JSON.parse(await this.kubectlOk(["get", "nodes", "-o", "json"])) as unknown;
    return list(at(nodes, "items")).map(nodeInfo);
  }

  async getPod(namespace: string, name: string): Promise<PodInfo | undefined> {
    const pod = await this.getJson("pod", namespace, name);
    return pod === undefined ? undefined : podInfo(pod);
  }

  async getService(namespace: string, name: string): Promise<ServiceInfo | undefined> {
    const service = await this.getJson("service", namespace, name);
    return service === undefined ? undefined : serviceInfo(service);
  }

  async getClaim(namespace: string, name: string): Promise<ClaimInfo | undefined> {
    const claim = await this.getJson("persistentvolumeclaim", namespace, name);
    return claim === undefined ? undefined : claimInfo(claim);
  }

  async apply(objects: readonly KubeObject[]): Promise<void> {
    await this.kubectlOk(["apply", "-f", "-"], asList(objects));
  }

  async delete(objects: readonly KubeObject[]): Promise<void> {
    const seconds = Math.floor(this.timeoutMs / 1000) - 5;
    await this.kubectlOk(
      ["delete", "-f", "-", "--ignore-not-found", "--wait=true", `--timeout=${seconds}s`],
      asList(objects),
    );
  }

  async exec(namespace: string, pod: string, command: readonly string[]): Promise<CommandResult> {
    return this.kubectl(["exec", "-n", namespace, pod, "--", ...command]);
  }

  httpGet(url: string, timeoutMs: number): Promise<HttpResult> {
    return new Promise((resolve, reject) => {
      const request = http.get(url, { timeout: timeoutMs }, (response) => {
        const body: Buffer[] = [];
        response.on("data", (chunk: Buffer) => body.push(chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(body).toString("utf8"),
          }),
        );
        response.on("error", reject);
      });
      request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs}ms`)));
      request.on("error", reject);
    });
  }

  async sshExec(host: string, command: string): Promise<CommandResult> {
    return runCommand(
      this.options.ssh ?? "ssh",
      [
        "-i",
        this.options.credentials.sshKeyFile,
        // The VMs get new host keys whenever they are re-created; nothing to pin here.
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
        `${this.options.sshUser}@${host}`,
        command,
      ],
      { timeoutMs: this.timeoutMs },
    );
  }
}

function asList(objects: readonly KubeObject[]): string {
  return JSON.stringify({ apiVersion: "v1", kind: "List", items: objects });
}
