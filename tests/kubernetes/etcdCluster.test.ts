/**
 * A real three-member etcd cluster started with the rendered command lines, first at the etcd
 * the e2e run installs first (one minor below the pin), then rolled member by member to the
 * pinned version, as the etcd step's update does: the cluster keeps its quorum and a key written
 * before. Each member lives in its own network namespace with the address plan's control IP,
 * joined by veth pairs to a bridge in a fourth namespace, so the peer and client URLs are exactly
 * the production ones. The certificates come from the PKI's own code and follow
 * certificateSpecs. Then, at the pinned version, the members restart one at a time again.
 *
 * Both etcds are the ones the release mirror holds (built from their Go modules by
 * build-mirror.sh).
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultVersions } from "../../components/config/defaults";
import {
  EMULATED_ETCD_TIMING,
  etcdCommand,
  EtcdFiles,
  etcdJoinCommand,
  EtcdMemberArgs,
} from "../../components/kubernetes/etcd";
import { NODE_ASSETS_DIR } from "../../components/cluster/nodeStep";
import { CA_USAGES, certificateSpecs, CertSpec } from "../../components/pki/certificates";
import { generateKey } from "../../components/pki/keys";
import { issueCertificate } from "../../components/pki/x509";
import { etcdMoveProblem } from "../../components/config/kubernetesSupport";
import { UPGRADE_FROM, etcdFromMirror } from "../e2e/mirror";
import { plan, which } from "./fixtures";
import { removeNetworkNamespace } from "../harness/namespaces";
import { describeIfAvailable } from "../harness/prerequisites";

const p = plan();
const started = Date.now();
const tag = `hwetcd-${crypto.randomBytes(3).toString("hex")}`;
const bridgeNs = `${tag}-br`;
const memberNs = (i: number) => `${tag}-${i}`;
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-etcd-"));
const processes: ChildProcess[] = [];
const namespaces: string[] = [];
let etcdDir = "";
let previousEtcdDir = "";

function canRun(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "needs root to create network namespaces";
  }
  if (which("ip") === undefined) {
    return "ip is not installed";
  }
  const etcd = etcdFromMirror(defaultVersions.etcd, workDir);
  if ("missing" in etcd) {
    return `etcd ${defaultVersions.etcd}: ${etcd.missing}`;
  }
  etcdDir = etcd.dir;
  const previous = etcdFromMirror(UPGRADE_FROM.etcd, workDir);
  if ("missing" in previous) {
    return `etcd ${UPGRADE_FROM.etcd}: ${previous.missing}`;
  }
  previousEtcdDir = previous.dir;
  return undefined;
}
const skipReason = canRun();

function ip(...args: string[]): void {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`ip ${args.join(" ")} failed: ${result.stderr}`);
  }
}

function inNs(ns: string, command: string, args: string[], timeoutMs = 15000) {
  return spawnSync("ip", ["netns", "exec", ns, command, ...args], {
    encoding: "utf8",
    timeout: timeoutMs,
  });
}

interface Pem {
  readonly cert: string;
  readonly key: string;
}

async function issue(spec: CertSpec, ca: Pem): Promise<Pem> {
  const key = generateKey("ecdsa-p256");
  const cert = await issueCertificate({
    subject: { commonName: spec.commonName, organization: spec.organization },
    dnsNames: spec.dnsNames,
    ipAddresses: spec.ipAddresses,
    usages: spec.usages,
    isCa: false,
    validityHours: 24,
    privateKeyPem: key.privateKeyPem,
    issuer: { certPem: ca.cert, privateKeyPem: ca.key },
  });
  return { cert: cert.certPem, key: key.privateKeyPem };
}

function write(name: string, pem: Pem): { cert: string; key: string } {
  const cert = path.join(workDir, `${name}.crt`);
  const key = path.join(workDir, `${name}.key`);
  fs.writeFileSync(cert, pem.cert);
  fs.writeFileSync(key, pem.key, { mode: 0o600 });
  return { cert, key };
}

function cleanUp(): void {
  for (const child of processes) {
    if (child.exitCode === null && child.pid !== undefined) {
      child.kill("SIGKILL");
    }
  }
  for (const ns of namespaces) {
    removeNetworkNamespace(ns);
  }
  fs.rmSync(workDir, { recursive: true, force: true });
}

const clientFiles = { ca: "", cert: "", key: "" };

function etcdctl(ns: string, args: string[], withCert = true) {
  const endpoints = p.controls.map((c) => `https://${c.ip}:2379`).join(",");
  return inNs(ns, path.join(etcdDir, "etcdctl"), [
    `--endpoints=${endpoints}`,
    `--cacert=${clientFiles.ca}`,
    ...(withCert ? [`--cert=${clientFiles.cert}`, `--key=${clientFiles.key}`] : []),
    "--dial-timeout=2s",
    "--command-timeout=4s",
    ...args,
  ]);
}

/** etcdctl (of the etcd in `dir`) inside `ns`, asking one endpoint only, with the client cert. */
function etcdctlAt(ns: string, endpoint: string, args: string[], dir = etcdDir) {
  return inNs(ns, path.join(dir, "etcdctl"), [
    `--endpoints=${endpoint}`,
    `--cacert=${clientFiles.ca}`,
    `--cert=${clientFiles.cert}`,
    `--key=${clientFiles.key}`,
    ...args,
  ]);
}

describeIfAvailable(
  skipReason,
  `a three-member etcd cluster from the rendered flags, ${UPGRADE_FROM.etcd} then ${defaultVersions.etcd}`,
  () => {
    beforeAll(async () => {
      const specs = certificateSpecs(p).filter((s) => s.signer === "etcd-ca");
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
      const ca: Pem = { cert: caCert.certPem, key: caKey.privateKeyPem };
      const caFile = path.join(workDir, "etcd-ca.crt");
      fs.writeFileSync(caFile, ca.cert);
      const bySpec = async (id: string) => {
        const spec = specs.find((s) => s.id === id);
        if (spec === undefined) {
          throw new Error(`no certificate spec ${id}`);
        }
        return write(id, await issue(spec, ca));
      };
      reissue = bySpec;
      const client = await bySpec("etcd-healthcheck-client");
      Object.assign(clientFiles, { ca: caFile, cert: client.cert, key: client.key });

      namespaces.push(bridgeNs);
      ip("netns", "add", bridgeNs);
      ip("-n", bridgeNs, "link", "add", "br0", "type", "bridge");
      ip("-n", bridgeNs, "link", "set", "br0", "up");
      p.controls.forEach((member, i) => {
        const ns = memberNs(i);
        namespaces.push(ns);
        ip("netns", "add", ns);
        ip("-n", ns, "link", "set", "lo", "up");
        ip(
          "-n",
          ns,
          "link",
          "add",
          "eth0",
          "type",
          "veth",
          "peer",
          "name",
          `m${i}`,
          "netns",
          bridgeNs,
        );
        ip("-n", ns, "addr", "add", `${member.ip}/${p.prefixLength}`, "dev", "eth0");
        ip("-n", ns, "link", "set", "eth0", "up");
        ip("-n", bridgeNs, "link", "set", `m${i}`, "master", "br0", "up");
      });

      for (const member of p.controls) {
        const server = await bySpec(`etcd-server-${member.name}`);
        const peer = await bySpec(`etcd-peer-${member.name}`);
        const files: EtcdFiles = {
          trustedCa: caFile,
          cert: server.cert,
          key: server.key,
          peerCert: peer.cert,
          peerKey: peer.key,
        };
        const dataDir = path.join(workDir, `data-${member.name}`);
        fs.mkdirSync(dataDir, { mode: 0o700 });
        dataDirs.push(dataDir);
        commandFor.push((dir) => {
          const args: EtcdMemberArgs = {
            member,
            members: p.controls,
            clusterToken: tag,
            binary: path.join(dir, "etcd"),
            dataDir,
            files,
            // The timing emulated guests get: the real members must accept it and still elect,
            // replicate and survive rolling restarts with it.
            timing: EMULATED_ETCD_TIMING,
            join: {
              script: path.join(NODE_ASSETS_DIR, "etcd-join.sh"),
              etcdctl: path.join(dir, "etcdctl"),
              envFile: path.join(workDir, `join-${member.name}.env`),
              clientCert: client.cert,
              clientKey: client.key,
            },
          };
          return asSystemdStarts(args);
        });
        commands.push(commandFor[commandFor.length - 1](previousEtcdDir));
      }
      // control0 and control2 first, until they have a quorum; then control1, late, as on
      // emulated VMs that boot at different speeds: it must join the forming cluster as planned.
      start(0);
      start(2);
      const deadline = Date.now() + 45_000;
      while (
        etcdctlAt(
          memberNs(0),
          `https://${p.controls[0].ip}:2379`,
          ["endpoint", "health"],
          previousEtcdDir,
        ).status !== 0
      ) {
        if (Date.now() > deadline) {
          throw new Error("control0 and control2 formed no quorum in 45 s");
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      start(1);
      await healthy(45_000);
    }, 90000);

    afterAll(() => {
      cleanUp();
      console.log(`etcd cluster test wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

    /** Each member's command line, for an etcd directory (the binary's version). */
    const commandFor: ((etcdDir: string) => string[])[] = [];
    const commands: string[][] = [];
    const dataDirs: string[] = [];

    /**
     * What the etcd unit makes systemd run: etcd-join.sh (ExecStartPre), then etcd with the
     * variables it wrote (EnvironmentFile, read before ExecStart).
     */
    function asSystemdStarts(args: EtcdMemberArgs): string[] {
      const quote = (words: string[]) =>
        words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(" ");
      const envFile = args.join?.envFile ?? "";
      return [
        "bash",
        "-c",
        `${quote(etcdJoinCommand(args))} && set -a && . ${quote([envFile])} && set +a && exec ${quote(etcdCommand(args))}`,
      ];
    }
    const members: ChildProcess[] = [];
    /** Issues the certificate again and writes it over the old one's files. */
    let reissue: (id: string) => Promise<{ cert: string; key: string }>;
    function start(i: number): void {
      const log = fs.openSync(path.join(workDir, `${p.controls[i].name}.log`), "a");
      const child = spawn("ip", ["netns", "exec", memberNs(i), ...commands[i]], {
        stdio: ["ignore", log, log],
      });
      processes.push(child);
      members[i] = child;
    }

    async function healthy(withinMs: number): Promise<void> {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const health = etcdctl(memberNs(0), ["endpoint", "health", "--cluster"]);
        // Every member, not only those that have published their client URLs yet.
        const members = `${health.stdout}${health.stderr}`.match(/is healthy/g) ?? [];
        if (health.status === 0 && members.length === p.controls.length) {
          break;
        }
        if (Date.now() > deadline) {
          const logs = p.controls
            .map(
              (c) =>
                `--- ${c.name}\n${fs.readFileSync(path.join(workDir, `${c.name}.log`), "utf8").slice(-2000)}`,
            )
            .join("\n");
          throw new Error(
            `etcd cluster did not become healthy in ${withinMs / 1000} s:\n${health.stderr}\n${logs}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }

    /** The version each member reports, from `etcdctl endpoint status`. */
    function memberVersions(): string[] {
      const status = etcdctl(memberNs(0), ["endpoint", "status", "--cluster", "-w", "json"]);
      expect(status.status).toBe(0);
      return (JSON.parse(status.stdout) as { Status: { version: string } }[]).map(
        (m) => m.Status.version,
      );
    }

    it("lets a late member join the cluster still forming as planned, not as a new member", () => {
      const env = fs.readFileSync(path.join(workDir, `join-${p.controls[1].name}.env`), "utf8");
      expect(env).toContain("ETCD_INITIAL_CLUSTER_STATE=new");
      const log = fs.readFileSync(path.join(workDir, `${p.controls[1].name}.log`), "utf8");
      expect(log).toContain("is forming the planned cluster: control1 joins it as planned");
      expect(log).not.toContain("removing that member");
    });

    it("upgrades a minor member by member, as the etcd step rolls, keeping quorum and data", async () => {
      expect(etcdMoveProblem(UPGRADE_FROM.etcd, defaultVersions.etcd)).toBeUndefined();
      expect(memberVersions()).toEqual([UPGRADE_FROM.etcd, UPGRADE_FROM.etcd, UPGRADE_FROM.etcd]);
      const value = crypto.randomBytes(8).toString("hex");
      expect(etcdctl(memberNs(0), ["put", "/hardway/upgrade", value]).status).toBe(0);
      for (let i = 0; i < p.controls.length; i++) {
        members[i].kill("SIGTERM");
        await new Promise((resolve) => members[i].once("exit", resolve));
        expect(etcdctl(memberNs((i + 1) % 3), ["put", `/hardway/upgrade-${i}`, "x"]).status).toBe(
          0,
        );
        commands[i] = commandFor[i](etcdDir);
        start(i);
        await healthy(30_000);
      }
      expect(memberVersions()).toEqual([
        defaultVersions.etcd,
        defaultVersions.etcd,
        defaultVersions.etcd,
      ]);
      const read = etcdctl(memberNs(2), ["get", "/hardway/upgrade", "--print-value-only"]);
      expect(read.stdout.trim()).toBe(value);
    }, 120_000);

    it("reports every member healthy over TLS with the health-check client certificate", () => {
      const health = etcdctl(memberNs(2), ["endpoint", "health", "--cluster"]);
      expect(health.status).toBe(0);
      const healthy = `${health.stdout}${health.stderr}`.match(/is healthy/g) ?? [];
      expect(healthy).toHaveLength(p.controls.length);
      const members = etcdctl(memberNs(1), ["member", "list", "--write-out=simple"]);
      expect(members.status).toBe(0);
      for (const c of p.controls) {
        expect(members.stdout).toContain(`${c.name}, https://${c.ip}:2380, https://${c.ip}:2379`);
      }
    });

    it("replicates a write made through one member to a read through another", () => {
      const value = crypto.randomBytes(8).toString("hex");
      expect(etcdctl(memberNs(0), ["put", "/hardway/test", value]).status).toBe(0);
      const read = etcdctlAt(memberNs(2), `https://${p.controls[2].ip}:2379`, [
        "--consistency=l",
        "get",
        "/hardway/test",
        "--print-value-only",
      ]);
      expect(read.status).toBe(0);
      expect(read.stdout.trim()).toBe(value);
    });

    it("answers on 127.0.0.1 inside a member, for local clients", () => {
      const local = etcdctlAt(memberNs(1), "https://127.0.0.1:2379", ["endpoint", "health"]);
      expect(`${local.stdout}${local.stderr}`).toContain("is healthy");
    });

    it("keeps its quorum and its data while the members restart one at a time", async () => {
      const value = crypto.randomBytes(8).toString("hex");
      expect(etcdctl(memberNs(0), ["put", "/hardway/rolling", value]).status).toBe(0);
      for (let i = 0; i < p.controls.length; i++) {
        members[i].kill("SIGTERM");
        await new Promise((resolve) => members[i].once("exit", resolve));
        // The other two still form a quorum: writes go on while this member is down.
        expect(etcdctl(memberNs((i + 1) % 3), ["put", `/hardway/during-${i}`, "x"]).status).toBe(0);
        start(i);
        await healthy(30_000);
      }
      const read = etcdctl(memberNs(1), ["get", "/hardway/rolling", "--print-value-only"]);
      expect(read.stdout.trim()).toBe(value);
    }, 120_000);

    it("replaces a member whose data is gone: removed, added again, started as existing", async () => {
      // A control VM re-created with a new disk: same name and address, empty data directory.
      const value = crypto.randomBytes(8).toString("hex");
      expect(etcdctl(memberNs(0), ["put", "/hardway/replaced", value]).status).toBe(0);
      const idOf = (name: string) => {
        const list = etcdctl(memberNs(0), ["member", "list", "-w", "simple"]);
        expect(list.status).toBe(0);
        return list.stdout
          .split("\n")
          .find((l) => l.includes(`, ${name}, `))
          ?.split(",")[0];
      };
      const before = idOf(p.controls[2].name);
      members[2].kill("SIGKILL");
      await new Promise((resolve) => members[2].once("exit", resolve));
      fs.rmSync(dataDirs[2], { recursive: true, force: true });
      fs.mkdirSync(dataDirs[2], { mode: 0o700 });
      start(2);
      // An added member is listed without a name until it has started and published itself;
      // until then `endpoint health --cluster` sees only the other two.
      const deadline = Date.now() + 60_000;
      const replaced = () => ![undefined, before].includes(idOf(p.controls[2].name));
      while (!replaced()) {
        if (Date.now() > deadline) {
          const log = fs.readFileSync(path.join(workDir, `${p.controls[2].name}.log`), "utf8");
          throw new Error(`${p.controls[2].name} did not rejoin in 60 s:\n${log.slice(-3000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      await healthy(30_000);
      const after = idOf(p.controls[2].name);
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
      const env = fs.readFileSync(path.join(workDir, `join-${p.controls[2].name}.env`), "utf8");
      expect(env).toContain("ETCD_INITIAL_CLUSTER_STATE=existing");
      const read = etcdctlAt(memberNs(2), `https://${p.controls[2].ip}:2379`, [
        "--consistency=s",
        "get",
        "/hardway/replaced",
        "--print-value-only",
      ]);
      expect(read.stdout.trim()).toBe(value);
      // The member log says why it joined the way it did.
      const log = fs.readFileSync(path.join(workDir, `${p.controls[2].name}.log`), "utf8");
      expect(log).toContain(`the cluster knows ${p.controls[2].name}`);
    }, 120_000);

    it("refuses a client without a certificate", () => {
      const anonymous = etcdctl(memberNs(0), ["get", "/hardway/test"], false);
      expect(anonymous.status).not.toBe(0);
      expect(anonymous.stdout).not.toContain("/hardway/test");
    });

    it("serves a renewed certificate from its next handshake on, without a restart", async () => {
      // What an update that only renews certificates relies on (node-step.sh --no-restart).
      const member = members[1];
      const renewed = await reissue(`etcd-server-${p.controls[1].name}`);
      const base64 = (pem: string) =>
        (/-----BEGIN CERTIFICATE-----([^-]+)-----END/.exec(pem)?.[1] ?? "").replace(/\s/g, "");
      const served = inNs(memberNs(0), "openssl", [
        "s_client",
        "-connect",
        `${p.controls[1].ip}:2379`,
        "-CAfile",
        clientFiles.ca,
        "-cert",
        clientFiles.cert,
        "-key",
        clientFiles.key,
      ]);
      expect(base64(served.stdout)).toBe(base64(fs.readFileSync(renewed.cert, "utf8")));
      expect(member.exitCode).toBeNull();
      expect(etcdctl(memberNs(1), ["endpoint", "health", "--cluster"]).status).toBe(0);
    });
  },
);
