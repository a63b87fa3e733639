/**
 * Real etcd members on this machine, each in a network namespace of its own with the address
 * plan's control IP, joined by veth pairs to a bridge in one more namespace, so peer and client
 * URLs are exactly the production ones. Certificates come from the PKI's own code and follow
 * certificateSpecs; each member runs what its systemd unit runs (etcd-join.sh, then etcd with the
 * settings it wrote, then etcd-member.sh promote), from the rendered command lines. The real etcd
 * tests share it (etcdCluster.test.ts, etcdMembership.test.ts).
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  EMULATED_ETCD_TIMING,
  EtcdFiles,
  EtcdMemberArgs,
  etcdCommand,
  etcdJoinCommand,
  etcdPromoteCommand,
  renderEtcdMembers,
} from "../../components/kubernetes/etcd";
import { NODE_ASSETS_DIR } from "../../components/cluster/nodeStep";
import { AddressPlan, NodeAddress } from "../../components/network/addressPlan";
import { CA_USAGES, CertSpec, certificateSpecs } from "../../components/pki/certificates";
import { generateKey } from "../../components/pki/keys";
import { issueCertificate } from "../../components/pki/x509";
import { removeNetworkNamespace } from "../harness/namespaces";

interface Pem {
  readonly cert: string;
  readonly key: string;
}

function ip(...args: string[]): void {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`ip ${args.join(" ")} failed: ${result.stderr}`);
  }
}

export function inNs(ns: string, command: string, args: string[], timeoutMs = 15000) {
  return spawnSync("ip", ["netns", "exec", ns, command, ...args], {
    encoding: "utf8",
    timeout: timeoutMs,
  });
}

const quote = (words: readonly string[]) =>
  words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(" ");

export class EtcdLab {
  readonly tag = `hwetcd-${crypto.randomBytes(3).toString("hex")}`;
  readonly workDir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-etcd-"));
  readonly client = { ca: "", cert: "", key: "" };
  /** The running member of each control node, by index in the plan. */
  readonly members: (ChildProcess | undefined)[] = [];
  /** Each member's data directory, by index. */
  readonly dataDirs: string[] = [];
  private readonly processes: ChildProcess[] = [];
  private readonly namespaces: string[] = [];
  private readonly files: EtcdFiles[] = [];
  private ca: Pem = { cert: "", key: "" };
  /** Issues the named certificate again and writes it over the old one's files. */
  reissue: (id: string) => Promise<{ cert: string; key: string }> = () =>
    Promise.reject(new Error("the lab is not set up"));

  constructor(
    /** The address plan with every control node a test will ever run. */
    readonly plan: AddressPlan,
  ) {}

  ns(i: number): string {
    return `${this.tag}-${i}`;
  }

  log(i: number): string {
    return path.join(this.workDir, `${this.plan.controls[i].name}.log`);
  }

  /** The CA, the health-check client, every member's namespace, certificates and data dir. */
  async setUp(): Promise<void> {
    const specs = certificateSpecs(this.plan).filter((s) => s.signer === "etcd-ca");
    const caKey = generateKey("ecdsa-p256");
    const caCert = await issueCertificate({
      subject: { commonName: "etcd-ca" },
      dnsNames: [],
      ipAddresses: [],
      usages: CA_USAGES,
      isCa: true,
      validityHours: 24,
      privateKeyPem: caKey.privateKeyPem,
    });
    this.ca = { cert: caCert.certPem, key: caKey.privateKeyPem };
    const caFile = path.join(this.workDir, "etcd-ca.crt");
    fs.writeFileSync(caFile, this.ca.cert);
    const bySpec = async (id: string) => {
      const spec = specs.find((s) => s.id === id);
      if (spec === undefined) {
        throw new Error(`no certificate spec ${id}`);
      }
      return this.write(id, await this.issue(spec));
    };
    this.reissue = bySpec;
    const client = await bySpec("etcd-healthcheck-client");
    Object.assign(this.client, { ca: caFile, cert: client.cert, key: client.key });

    const bridge = `${this.tag}-br`;
    this.namespaces.push(bridge);
    ip("netns", "add", bridge);
    ip("-n", bridge, "link", "add", "br0", "type", "bridge");
    ip("-n", bridge, "link", "set", "br0", "up");
    for (const [i, member] of this.plan.controls.entries()) {
      const ns = this.ns(i);
      this.namespaces.push(ns);
      ip("netns", "add", ns);
      ip("-n", ns, "link", "set", "lo", "up");
      ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", `m${i}`, "netns", bridge);
      ip("-n", ns, "addr", "add", `${member.ip}/${this.plan.prefixLength}`, "dev", "eth0");
      ip("-n", ns, "link", "set", "eth0", "up");
      ip("-n", bridge, "link", "set", `m${i}`, "master", "br0", "up");
      const server = await bySpec(`etcd-server-${member.name}`);
      const peer = await bySpec(`etcd-peer-${member.name}`);
      this.files[i] = {
        trustedCa: caFile,
        cert: server.cert,
        key: server.key,
        peerCert: peer.cert,
        peerKey: peer.key,
      };
      this.dataDirs[i] = path.join(this.workDir, `data-${member.name}`);
      fs.mkdirSync(this.dataDirs[i], { mode: 0o700 });
    }
  }

  private async issue(spec: CertSpec): Promise<Pem> {
    const key = generateKey("ecdsa-p256");
    const cert = await issueCertificate({
      subject: { commonName: spec.commonName, organization: spec.organization },
      dnsNames: spec.dnsNames,
      ipAddresses: spec.ipAddresses,
      usages: spec.usages,
      isCa: false,
      validityHours: 24,
      privateKeyPem: key.privateKeyPem,
      issuer: { certPem: this.ca.cert, privateKeyPem: this.ca.key },
    });
    return { cert: cert.certPem, key: key.privateKeyPem };
  }

  private write(name: string, pem: Pem): { cert: string; key: string } {
    const cert = path.join(this.workDir, `${name}.crt`);
    const key = path.join(this.workDir, `${name}.key`);
    fs.writeFileSync(cert, pem.cert);
    fs.writeFileSync(key, pem.key, { mode: 0o600 });
    return { cert, key };
  }

  /** The member arguments the etcd step renders for control node `i` of `members`. */
  memberArgs(i: number, members: readonly NodeAddress[], etcdDir: string): EtcdMemberArgs {
    return {
      member: this.plan.controls[i],
      members,
      clusterToken: this.tag,
      binary: path.join(etcdDir, "etcd"),
      dataDir: this.dataDirs[i],
      files: this.files[i],
      // The timing emulated guests get: the real members must accept it and still elect,
      // replicate and survive restarts and membership changes with it.
      timing: EMULATED_ETCD_TIMING,
      join: {
        script: path.join(NODE_ASSETS_DIR, "etcd-join.sh"),
        membersFile: path.join(this.workDir, `members-${this.plan.controls[i].name}`),
        memberScript: path.join(NODE_ASSETS_DIR, "etcd-member.sh"),
        etcdctl: path.join(etcdDir, "etcdctl"),
        envFile: path.join(this.workDir, `join-${this.plan.controls[i].name}.env`),
        clientCert: this.client.cert,
        clientKey: this.client.key,
      },
    };
  }

  /**
   * What the etcd unit makes systemd run for these member arguments: etcd-join.sh
   * (ExecStartPre), etcd with the variables it wrote (EnvironmentFile, read before ExecStart),
   * and beside it, once etcd serves, etcd-member.sh promote (ExecStartPost).
   */
  start(i: number, args: EtcdMemberArgs): void {
    // What the etcd step installs beside the unit: the members the member plans with.
    fs.writeFileSync(args.join?.membersFile ?? "", renderEtcdMembers(args.members));
    const envFile = args.join?.envFile ?? "";
    const promote = `${quote(etcdPromoteCommand(args))} --interval 1`;
    const script = [
      `${quote(etcdJoinCommand(args))} || exit 1`,
      `set -a && . ${quote([envFile])} && set +a`,
      `${quote(etcdCommand(args))} & etcd=$!`,
      `${promote} & promote=$!`,
      // As systemd stops the unit: etcd gets the TERM and is waited for.
      `trap 'kill -TERM $etcd $promote 2>/dev/null; wait $etcd; exit 143' TERM`,
      `wait $etcd`,
    ].join("\n");
    const out = fs.openSync(this.log(i), "a");
    // A process group of its own: a signal reaches etcd and the promotion too.
    const child = spawn("ip", ["netns", "exec", this.ns(i), "bash", "-c", script], {
      stdio: ["ignore", out, out],
      detached: true,
    });
    this.processes.push(child);
    this.members[i] = child;
  }

  /** Stops member `i` (SIGTERM, or SIGKILL as a crash) and waits until it is gone. */
  async stop(i: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.members[i];
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    // A TERM goes to the shell, which stops etcd and waits for it; a KILL (a crash) to all.
    process.kill(signal === "SIGKILL" ? -(child.pid ?? 0) : (child.pid ?? 0), signal);
    await exited;
    this.members[i] = undefined;
  }

  /** etcdctl (of the etcd in `dir`) inside member `i`'s namespace, against `endpoints`. */
  etcdctl(
    i: number,
    dir: string,
    endpoints: readonly string[],
    args: readonly string[],
    withCert = true,
  ) {
    return inNs(this.ns(i), path.join(dir, "etcdctl"), [
      `--endpoints=${endpoints.join(",")}`,
      `--cacert=${this.client.ca}`,
      ...(withCert ? [`--cert=${this.client.cert}`, `--key=${this.client.key}`] : []),
      "--dial-timeout=2s",
      "--command-timeout=4s",
      ...args,
    ]);
  }

  /** The client URL of control node `i`. */
  clientUrl(i: number): string {
    return `https://${this.plan.controls[i].ip}:2379`;
  }

  /** The end of every member's log, for a failure's message. */
  logs(): string {
    return this.plan.controls
      .map((c, i) =>
        fs.existsSync(this.log(i))
          ? `--- ${c.name}\n${fs.readFileSync(this.log(i), "utf8").slice(-(Number(process.env.HW_LOG_CHARS) || 2000))}`
          : "",
      )
      .join("\n");
  }

  cleanUp(): void {
    for (const child of this.processes) {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
    for (const ns of this.namespaces) {
      removeNetworkNamespace(ns);
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}
