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
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultVersions } from "../../components/config/defaults";
import { etcdMoveProblem } from "../../components/config/kubernetesSupport";
import { UPGRADE_FROM, etcdFromMirror } from "../e2e/mirror";
import { describeIfAvailable } from "../harness/prerequisites";
import { EtcdLab, inNs } from "./etcdLab";
import { plan, which } from "./fixtures";

const p = plan();
const started = Date.now();
const lab = new EtcdLab(p);
let etcdDir = "";
let previousEtcdDir = "";

function canRun(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "needs root to create network namespaces";
  }
  if (which("ip") === undefined) {
    return "ip is not installed";
  }
  const etcd = etcdFromMirror(defaultVersions.etcd, lab.workDir);
  if ("missing" in etcd) {
    return `etcd ${defaultVersions.etcd}: ${etcd.missing}`;
  }
  etcdDir = etcd.dir;
  const previous = etcdFromMirror(UPGRADE_FROM.etcd, lab.workDir);
  if ("missing" in previous) {
    return `etcd ${UPGRADE_FROM.etcd}: ${previous.missing}`;
  }
  previousEtcdDir = previous.dir;
  return undefined;
}
const skipReason = canRun();

const allEndpoints = p.controls.map((_, i) => lab.clientUrl(i));

/** etcdctl (of the pinned etcd) inside member `ns`'s namespace, against every member. */
function etcdctl(ns: number, args: string[], withCert = true) {
  return lab.etcdctl(ns, etcdDir, allEndpoints, args, withCert);
}

/** etcdctl (of the etcd in `dir`) inside member `ns`'s namespace, asking one endpoint only. */
function etcdctlAt(ns: number, endpoint: string, args: string[], dir = etcdDir) {
  return lab.etcdctl(ns, dir, [endpoint], args);
}

describeIfAvailable(
  skipReason,
  `a three-member etcd cluster from the rendered flags, ${UPGRADE_FROM.etcd} then ${defaultVersions.etcd}`,
  () => {
    /** The etcd directory each member runs from (its version). */
    const dirs: string[] = [];
    const start = (i: number) => lab.start(i, lab.memberArgs(i, p.controls, dirs[i]));

    beforeAll(async () => {
      await lab.setUp();
      p.controls.forEach((_, i) => (dirs[i] = previousEtcdDir));
      // control0 and control2 first, until they have a quorum; then control1, late, as on
      // emulated VMs that boot at different speeds: it must join the forming cluster as planned.
      start(0);
      start(2);
      // The member started second may find the first listening but not answering (it waits for
      // a quorum, which needs the second): etcd-join.sh asks it three times, then joins as
      // planned. Under load that takes a minute.
      const deadline = Date.now() + 150_000;
      while (etcdctlAt(0, lab.clientUrl(0), ["endpoint", "health"], previousEtcdDir).status !== 0) {
        if (Date.now() > deadline) {
          throw new Error(`control0 and control2 formed no quorum in 150 s:\n${lab.logs()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      start(1);
      await healthy(90_000);
    }, 300_000);

    afterAll(() => {
      lab.cleanUp();
      console.log(`etcd cluster test wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

    async function healthy(withinMs: number): Promise<void> {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const health = etcdctl(0, ["endpoint", "health", "--cluster"]);
        // Every member, not only those that have published their client URLs yet.
        const members = `${health.stdout}${health.stderr}`.match(/is healthy/g) ?? [];
        if (health.status === 0 && members.length === p.controls.length) {
          break;
        }
        if (Date.now() > deadline) {
          throw new Error(
            `etcd cluster did not become healthy in ${withinMs / 1000} s:\n${health.stderr}\n${lab.logs()}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }

    /** The version each member reports, from `etcdctl endpoint status`. */
    function memberVersions(): string[] {
      const status = etcdctl(0, ["endpoint", "status", "--cluster", "-w", "json"]);
      expect(status.status).toBe(0);
      return (JSON.parse(status.stdout) as { Status: { version: string } }[]).map(
        (m) => m.Status.version,
      );
    }

    it("lets a late member join the cluster still forming as planned, not as a new member", () => {
      const env = fs.readFileSync(path.join(lab.workDir, `join-${p.controls[1].name}.env`), "utf8");
      expect(env).toContain("ETCD_INITIAL_CLUSTER_STATE=new");
      const log = fs.readFileSync(lab.log(1), "utf8");
      expect(log).toContain("is forming the planned cluster: control1 joins it as planned");
      expect(log).not.toContain("removing that member");
    });

    it("upgrades a minor member by member, as the etcd step rolls, keeping quorum and data", async () => {
      expect(etcdMoveProblem(UPGRADE_FROM.etcd, defaultVersions.etcd)).toBeUndefined();
      expect(memberVersions()).toEqual([UPGRADE_FROM.etcd, UPGRADE_FROM.etcd, UPGRADE_FROM.etcd]);
      const value = crypto.randomBytes(8).toString("hex");
      expect(etcdctl(0, ["put", "/hardway/upgrade", value]).status).toBe(0);
      for (let i = 0; i < p.controls.length; i++) {
        await lab.stop(i);
        expect(etcdctl((i + 1) % 3, ["put", `/hardway/upgrade-${i}`, "x"]).status).toBe(0);
        dirs[i] = etcdDir;
        start(i);
        await healthy(30_000);
      }
      expect(memberVersions()).toEqual([
        defaultVersions.etcd,
        defaultVersions.etcd,
        defaultVersions.etcd,
      ]);
      const read = etcdctl(2, ["get", "/hardway/upgrade", "--print-value-only"]);
      expect(read.stdout.trim()).toBe(value);
    }, 120_000);

    it("reports every member healthy over TLS with the health-check client certificate", () => {
      const health = etcdctl(2, ["endpoint", "health", "--cluster"]);
      expect(health.status).toBe(0);
      const healthy = `${health.stdout}${health.stderr}`.match(/is healthy/g) ?? [];
      expect(healthy).toHaveLength(p.controls.length);
      const members = etcdctl(1, ["member", "list", "--write-out=simple"]);
      expect(members.status).toBe(0);
      for (const c of p.controls) {
        expect(members.stdout).toContain(`${c.name}, https://${c.ip}:2380, https://${c.ip}:2379`);
      }
    });

    it("replicates a write made through one member to a read through another", () => {
      const value = crypto.randomBytes(8).toString("hex");
      expect(etcdctl(0, ["put", "/hardway/test", value]).status).toBe(0);
      const read = etcdctlAt(2, `https://${p.controls[2].ip}:2379`, [
        "--consistency=l",
        "get",
        "/hardway/test",
        "--print-value-only",
      ]);
      expect(read.status).toBe(0);
      expect(read.stdout.trim()).toBe(value);
    });

    it("answers on 127.0.0.1 inside a member, for local clients", () => {
      const local = etcdctlAt(1, "https://127.0.0.1:2379", ["endpoint", "health"]);
      expect(`${local.stdout}${local.stderr}`).toContain("is healthy");
    });

    it("keeps its quorum and its data while the members restart one at a time", async () => {
      const value = crypto.randomBytes(8).toString("hex");
      expect(etcdctl(0, ["put", "/hardway/rolling", value]).status).toBe(0);
      for (let i = 0; i < p.controls.length; i++) {
        await lab.stop(i);
        // The other two still form a quorum: writes go on while this member is down.
        expect(etcdctl((i + 1) % 3, ["put", `/hardway/during-${i}`, "x"]).status).toBe(0);
        start(i);
        await healthy(30_000);
      }
      const read = etcdctl(1, ["get", "/hardway/rolling", "--print-value-only"]);
      expect(read.stdout.trim()).toBe(value);
    }, 120_000);

    it("replaces a member whose data is gone: removed, added again, started as existing", async () => {
      // A control VM re-created with a new disk: same name and address, empty data directory.
      const value = crypto.randomBytes(8).toString("hex");
      expect(etcdctl(0, ["put", "/hardway/replaced", value]).status).toBe(0);
      const idOf = (name: string) => {
        const list = etcdctl(0, ["member", "list", "-w", "simple"]);
        expect(list.status).toBe(0);
        return list.stdout
          .split("\n")
          .find((l) => l.includes(`, ${name}, `))
          ?.split(",")[0];
      };
      const before = idOf(p.controls[2].name);
      await lab.stop(2, "SIGKILL");
      fs.rmSync(lab.dataDirs[2], { recursive: true, force: true });
      fs.mkdirSync(lab.dataDirs[2], { mode: 0o700 });
      start(2);
      // An added member is listed without a name until it has started and published itself;
      // until then `endpoint health --cluster` sees only the other two.
      const deadline = Date.now() + 60_000;
      const replaced = () => ![undefined, before].includes(idOf(p.controls[2].name));
      while (!replaced()) {
        if (Date.now() > deadline) {
          const log = fs.readFileSync(lab.log(2), "utf8");
          throw new Error(`${p.controls[2].name} did not rejoin in 60 s:\n${log.slice(-3000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      await healthy(30_000);
      const after = idOf(p.controls[2].name);
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
      const env = fs.readFileSync(path.join(lab.workDir, `join-${p.controls[2].name}.env`), "utf8");
      expect(env).toContain("ETCD_INITIAL_CLUSTER_STATE=existing");
      const read = etcdctlAt(2, `https://${p.controls[2].ip}:2379`, [
        "--consistency=s",
        "get",
        "/hardway/replaced",
        "--print-value-only",
      ]);
      expect(read.stdout.trim()).toBe(value);
      // The member log says why it joined the way it did.
      const log = fs.readFileSync(lab.log(2), "utf8");
      expect(log).toContain(`the cluster knows ${p.controls[2].name}`);
    }, 120_000);

    it("refuses a client without a certificate", () => {
      const anonymous = etcdctl(0, ["get", "/hardway/test"], false);
      expect(anonymous.status).not.toBe(0);
      expect(anonymous.stdout).not.toContain("/hardway/test");
    });

    it("serves a renewed certificate from its next handshake on, without a restart", async () => {
      // What an update that only renews certificates relies on (node-step.sh --no-restart).
      const member = lab.members[1];
      const renewed = await lab.reissue(`etcd-server-${p.controls[1].name}`);
      const base64 = (pem: string) =>
        (/-----BEGIN CERTIFICATE-----([^-]+)-----END/.exec(pem)?.[1] ?? "").replace(/\s/g, "");
      const served = inNs(lab.ns(0), "openssl", [
        "s_client",
        "-connect",
        `${p.controls[1].ip}:2379`,
        "-CAfile",
        lab.client.ca,
        "-cert",
        lab.client.cert,
        "-key",
        lab.client.key,
      ]);
      expect(base64(served.stdout)).toBe(base64(fs.readFileSync(renewed.cert, "utf8")));
      expect(member?.exitCode).toBeNull();
      expect(etcdctl(1, ["endpoint", "health", "--cluster"]).status).toBe(0);
    });
  },
);
