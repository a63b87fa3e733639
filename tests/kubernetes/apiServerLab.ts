/**
 * A real kube-apiserver of the pinned version on loopback, over a real etcd, both from the
 * release mirror: the consumer that validates the Kubernetes objects the program creates through
 * the API (every field known to the schema, every reference admitted), as Pulumi's server-side
 * apply would send them. Minimal on purpose: one member, plain-http etcd on loopback, a
 * self-signed admin certificate in system:masters, the serving certificate the API server makes
 * itself. kubectl of the same version talks to it.
 */
import { ChildProcess, SpawnSyncReturns, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import { defaultVersions } from "../../components/config/defaults";
import { etcdFromMirror, kubernetesBinaryFromMirror } from "../e2e/mirror";
import { selfSigned } from "../harness/selfSigned";

/** A free TCP port on loopback (free when asked; the API server takes it right after). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function openssl(args: string[], cwd: string): void {
  const made = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (made.status !== 0) {
    throw new Error(`openssl ${args.join(" ")} failed: ${made.stderr}`);
  }
}

/** Why the lab cannot run here, or undefined when it can. */
export function apiServerLabMissing(version = defaultVersions.kubernetes): string | undefined {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), "hw-api-probe-"));
  try {
    const etcd = etcdFromMirror(defaultVersions.etcd, probe);
    const missing = [
      ...("missing" in etcd ? [etcd.missing] : []),
      ...["kube-apiserver", "kubectl"].flatMap((binary) => {
        const found = kubernetesBinaryFromMirror(version, binary);
        return "missing" in found ? [found.missing] : [];
      }),
      ...(spawnSync("sh", ["-c", "command -v openssl"]).status === 0 ? [] : ["needs openssl"]),
    ];
    return missing.length === 0 ? undefined : missing.join("; ");
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

export interface ApiServerLabOptions {
  /** --service-cluster-ip-range: the plan's service CIDR, so its addresses are valid here. */
  readonly serviceCidr: string;
  /** Seconds to wait for /readyz. @default 180 (the API server starts slowly on a loaded machine) */
  readonly readySeconds?: number;
  /** More flags for the API server, e.g. the program's own shutdown flags. @default none */
  readonly apiServerArgs?: readonly string[];
}

export class ApiServerLab {
  readonly workDir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-apiserver-"));
  readonly kubeconfig = path.join(this.workDir, "admin.kubeconfig");
  private readonly processes: ChildProcess[] = [];
  private apiServer: ChildProcess | undefined;
  private readonly logs: string[] = [];
  private kubectlPath = "";

  /** Starts etcd and the API server and waits until /readyz answers ok. */
  async start(options: ApiServerLabOptions): Promise<void> {
    const dir = this.workDir;
    const etcd = etcdFromMirror(defaultVersions.etcd, dir);
    const apiserver = kubernetesBinaryFromMirror(defaultVersions.kubernetes, "kube-apiserver");
    const kubectl = kubernetesBinaryFromMirror(defaultVersions.kubernetes, "kubectl");
    if ("missing" in etcd || "missing" in apiserver || "missing" in kubectl) {
      throw new Error(apiServerLabMissing());
    }
    this.kubectlPath = kubectl.path;
    selfSigned(dir, "admin", "/CN=hardway-test-admin/O=system:masters");
    openssl(
      ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key"],
      dir,
    );
    openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);

    const [clientPort, peerPort, securePort] = [
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const etcdUrl = `http://127.0.0.1:${clientPort}`;
    this.run(path.join(etcd.dir, "etcd"), [
      `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
    ]);
    this.apiServer = this.run(apiserver.path, [
      ...(options.apiServerArgs ?? []),
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${securePort}`,
      `--cert-dir=${path.join(dir, "serving")}`,
      `--client-ca-file=${path.join(dir, "admin.crt")}`,
      "--authorization-mode=RBAC",
      `--service-cluster-ip-range=${options.serviceCidr}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      `--service-account-key-file=${path.join(dir, "sa.pub")}`,
      `--service-account-signing-key-file=${path.join(dir, "sa.key")}`,
    ]);
    fs.writeFileSync(
      this.kubeconfig,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "lab",
            cluster: {
              server: `https://127.0.0.1:${securePort}`,
              // The API server's own self-signed serving certificate, on loopback.
              "insecure-skip-tls-verify": true,
            },
          },
        ],
        users: [
          {
            name: "admin",
            user: {
              "client-certificate": path.join(dir, "admin.crt"),
              "client-key": path.join(dir, "admin.key"),
            },
          },
        ],
        contexts: [{ name: "lab", context: { cluster: "lab", user: "admin" } }],
        "current-context": "lab",
      }),
    );
    const deadline = Date.now() + (options.readySeconds ?? 180) * 1000;
    for (;;) {
      const ready = this.kubectl(["get", "--raw", "/readyz"]);
      if (ready.status === 0 && ready.stdout.trim() === "ok") {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `kube-apiserver was not ready within ${options.readySeconds ?? 180} s: ${ready.stderr}\n${this.logTail()}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  /** kubectl of the pinned version against the lab, optionally with a document on stdin. */
  kubectl(args: readonly string[], input?: string): SpawnSyncReturns<string> {
    return spawnSync(this.kubectlPath, ["--kubeconfig", this.kubeconfig, ...args], {
      encoding: "utf8",
      input,
      timeout: 60_000,
    });
  }

  /** kubectl of the pinned version against the lab, running until it ends or is killed. */
  kubectlInBackground(args: readonly string[]): ChildProcess {
    const child = spawn(this.kubectlPath, ["--kubeconfig", this.kubeconfig, ...args], {
      stdio: "ignore",
    });
    this.processes.push(child);
    return child;
  }

  /**
   * Sends the API server SIGTERM, as `systemctl stop` does, and waits up to `withinSeconds` for
   * it to exit: the seconds it took and how it ended, or `exited: false`.
   */
  async terminate(
    withinSeconds: number,
  ): Promise<{ exited: boolean; seconds: number; code: number | null }> {
    const server = this.apiServer;
    if (server === undefined) {
      throw new Error("the lab's API server was never started");
    }
    const started = Date.now();
    const exit = new Promise<number | null>((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    const code = await Promise.race([
      exit.then((c) => ({ code: c })),
      new Promise<undefined>((resolve) =>
        setTimeout(() => resolve(undefined), withinSeconds * 1000),
      ),
    ]);
    return {
      exited: code !== undefined,
      seconds: (Date.now() - started) / 1000,
      code: code?.code ?? null,
    };
  }

  /** The last lines etcd and the API server wrote, for a failure's message. */
  logTail(lines = 40): string {
    return this.logs.join("").split("\n").slice(-lines).join("\n");
  }

  stop(): void {
    for (const child of this.processes) {
      child.kill("SIGKILL");
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }

  private run(command: string, args: string[]): ChildProcess {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.on("data", (d: Buffer) => {
      this.logs.push(d.toString());
      if (this.logs.length > 400) {
        this.logs.splice(0, 200);
      }
    });
    this.processes.push(child);
    return child;
  }
}
