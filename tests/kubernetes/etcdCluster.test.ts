/**
 * A real three-member etcd cluster started with the rendered command lines. Each member lives in
 * its own network namespace with the address plan's control IP, joined by veth pairs to a bridge
 * in a fourth namespace, so the peer and client URLs are exactly the production ones. The
 * certificates are real (openssl via the tls stand-in) and follow certificateSpecs.
 *
 * This machine has Debian's etcd 3.4; the rendered command targets 3.5, so the test drops the
 * flags in ETCD_35_ONLY_FLAGS (withoutEtcd35OnlyFlags) and checks against `etcd --help` that
 * this removes exactly the flags 3.4 does not know.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  ETCD_35_ONLY_FLAGS,
  etcdCommand,
  EtcdFiles,
  withoutEtcd35OnlyFlags,
} from "../../components/kubernetes/etcd";
import { CA_USAGES, certificateSpecs, CertSpec } from "../../components/pki/certificates";
import { certRequest, locallySignedCert, privateKey, selfSignedCert } from "../harness/tlsStandIn";
import { plan, which } from "./fixtures";

const p = plan();
const started = Date.now();
const tag = `hwetcd-${crypto.randomBytes(3).toString("hex")}`;
const bridgeNs = `${tag}-br`;
const memberNs = (i: number) => `${tag}-${i}`;
let workDir = "";
const processes: ChildProcess[] = [];
const namespaces: string[] = [];

function canRun(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "needs root to create network namespaces";
  }
  for (const tool of ["ip", "etcd", "etcdctl", "openssl"]) {
    if (which(tool) === undefined) {
      return `${tool} is not installed`;
    }
  }
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

function issue(spec: CertSpec, ca: Pem): Pem {
  const key = privateKey({ algorithm: "ECDSA", ecdsaCurve: "P256" });
  const csr = certRequest({
    privateKeyPem: key.privateKeyPem,
    subject: { commonName: spec.commonName, organization: spec.organization },
    dnsNames: spec.dnsNames,
    ipAddresses: spec.ipAddresses,
  });
  const cert = locallySignedCert({
    certRequestPem: csr.certRequestPem,
    caCertPem: ca.cert,
    caPrivateKeyPem: ca.key,
    allowedUses: spec.usages,
    validityPeriodHours: 24,
  });
  return { cert: String(cert.certPem), key: String(key.privateKeyPem) };
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
    // Anything still running in the namespace (etcd re-parented by `ip netns exec`) goes too.
    const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout ?? "";
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    spawnSync("ip", ["netns", "del", ns]);
  }
  if (workDir !== "") {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

const clientFiles = { ca: "", cert: "", key: "" };

function etcdctl(ns: string, args: string[], withCert = true) {
  const endpoints = p.controls.map((c) => `https://${c.ip}:2379`).join(",");
  return inNs(ns, "etcdctl", [
    `--endpoints=${endpoints}`,
    `--cacert=${clientFiles.ca}`,
    ...(withCert ? [`--cert=${clientFiles.cert}`, `--key=${clientFiles.key}`] : []),
    "--dial-timeout=2s",
    "--command-timeout=4s",
    ...args,
  ]);
}

(skipReason === undefined ? describe : describe.skip)(
  "a three-member etcd cluster from the rendered flags",
  () => {
    beforeAll(async () => {
      workDir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-etcd-"));
      const specs = certificateSpecs(p).filter((s) => s.signer === "etcd-ca");
      const caKey = privateKey({ algorithm: "ECDSA", ecdsaCurve: "P256" });
      const caCert = selfSignedCert({
        privateKeyPem: caKey.privateKeyPem,
        subject: { commonName: "etcd-ca" },
        isCaCertificate: true,
        allowedUses: CA_USAGES,
        validityPeriodHours: 24,
      });
      const ca: Pem = { cert: String(caCert.certPem), key: String(caKey.privateKeyPem) };
      const caFile = path.join(workDir, "etcd-ca.crt");
      fs.writeFileSync(caFile, ca.cert);
      const bySpec = (id: string) => {
        const spec = specs.find((s) => s.id === id);
        if (spec === undefined) {
          throw new Error(`no certificate spec ${id}`);
        }
        return write(id, issue(spec, ca));
      };
      const client = bySpec("etcd-healthcheck-client");
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

      p.controls.forEach((member, i) => {
        const server = bySpec(`etcd-server-${member.name}`);
        const peer = bySpec(`etcd-peer-${member.name}`);
        const files: EtcdFiles = {
          trustedCa: caFile,
          cert: server.cert,
          key: server.key,
          peerCert: peer.cert,
          peerKey: peer.key,
        };
        const dataDir = path.join(workDir, `data-${member.name}`);
        fs.mkdirSync(dataDir, { mode: 0o700 });
        const command = withoutEtcd35OnlyFlags(
          etcdCommand({
            member,
            members: p.controls,
            clusterToken: tag,
            binary: "/usr/bin/etcd",
            dataDir,
            files,
          }),
        );
        const log = fs.openSync(path.join(workDir, `${member.name}.log`), "w");
        const child = spawn("ip", ["netns", "exec", memberNs(i), ...command], {
          stdio: ["ignore", log, log],
        });
        processes.push(child);
      });

      const deadline = Date.now() + 45000;
      for (;;) {
        const health = etcdctl(memberNs(0), ["endpoint", "health", "--cluster"]);
        if (health.status === 0) {
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
            `etcd cluster did not become healthy in 45 s:\n${health.stderr}\n${logs}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }, 90000);

    afterAll(() => {
      cleanUp();
      console.log(`etcd cluster test wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

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
      const read = inNs(memberNs(2), "etcdctl", [
        `--endpoints=https://${p.controls[2].ip}:2379`,
        `--cacert=${clientFiles.ca}`,
        `--cert=${clientFiles.cert}`,
        `--key=${clientFiles.key}`,
        "--consistency=l",
        "get",
        "/hardway/test",
        "--print-value-only",
      ]);
      expect(read.status).toBe(0);
      expect(read.stdout.trim()).toBe(value);
    });

    it("answers on 127.0.0.1 inside a member, for local clients", () => {
      const local = inNs(memberNs(1), "etcdctl", [
        "--endpoints=https://127.0.0.1:2379",
        `--cacert=${clientFiles.ca}`,
        `--cert=${clientFiles.cert}`,
        `--key=${clientFiles.key}`,
        "endpoint",
        "health",
      ]);
      expect(`${local.stdout}${local.stderr}`).toContain("is healthy");
    });

    it("refuses a client without a certificate", () => {
      const anonymous = etcdctl(memberNs(0), ["get", "/hardway/test"], false);
      expect(anonymous.status).not.toBe(0);
      expect(anonymous.stdout).not.toContain("/hardway/test");
    });
  },
);

describe("running the rendered etcd command on etcd 3.4", () => {
  it("drops exactly the flags etcd 3.4 does not know", () => {
    if (which("etcd") === undefined) {
      console.warn("etcd is not installed; cannot compare the flags with its --help");
      return;
    }
    const help = spawnSync("etcd", ["--help"], { encoding: "utf8" });
    const known = new Set(
      `${help.stdout}${help.stderr}`.match(/^\s*--[a-z0-9-]+/gm)?.map((f) => f.trim().slice(2)),
    );
    const rendered = etcdCommand({ member: p.controls[0], members: p.controls, clusterToken: "t" })
      .slice(1)
      .map((a) => a.slice(2, a.indexOf("=")));
    expect(rendered.filter((f) => !known.has(f))).toEqual([...ETCD_35_ONLY_FLAGS]);
    const adapted = withoutEtcd35OnlyFlags(
      etcdCommand({ member: p.controls[0], members: p.controls, clusterToken: "t" }),
    );
    expect(adapted.slice(1).every((a) => known.has(a.slice(2, a.indexOf("="))))).toBe(true);
  });
});

if (skipReason !== undefined) {
  console.warn(`etcd cluster test not run: ${skipReason}`);
}
