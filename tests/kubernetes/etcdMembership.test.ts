/**
 * A running etcd cluster that grows and shrinks, 1 → 3 → 5 → 3 members, with the real etcd of
 * the release mirror and exactly what the etcd step runs: each member's rendered command lines
 * (etcd-join.sh before etcd, etcd-member.sh promote after it), the members file the step writes
 * for each count, and etcd-member.sh leave on a member before its step is removed. The step
 * rolls over its targets in plan order, one at a time, each healthy before the next; the members
 * that stay are not restarted (their members file is a no-restart file). Meanwhile a writer puts
 * a key through the members every 300 ms: no write may fail, and a key written at the start is
 * read at the end.
 */
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultVersions } from "../../components/config/defaults";
import { NODE_ASSETS_DIR } from "../../components/cluster/nodeStep";
import {
  defaultEtcdJoinFiles,
  etcdLeaveCommand,
  renderEtcdMembers,
} from "../../components/kubernetes/etcd";
import { CA_FILES } from "../../components/kubernetes/paths";
import { etcdFromMirror } from "../e2e/mirror";
import { describeIfAvailable } from "../harness/prerequisites";
import { EtcdLab, inNs } from "./etcdLab";
import { plan, which } from "./fixtures";

const p = plan({ controlPlanes: 5 });
const lab = new EtcdLab(p);
let etcdDir = "";

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
  return undefined;
}
const skipReason = canRun();

/** The members the etcd step plans with `n` control planes. */
const at = (n: number) => p.controls.slice(0, n);

/** "ID, STATUS, NAME, PEER URLS, CLIENT URLS, IS LEARNER" lines, as one member sees them. */
function memberList(through: number): { name: string; learner: boolean }[] {
  const list = lab.etcdctl(
    through,
    etcdDir,
    [lab.clientUrl(through)],
    ["member", "list", "--consistency=s", "-w", "simple"],
  );
  if (list.status !== 0) {
    throw new Error(`member list through ${p.controls[through].name}: ${list.stderr}`);
  }
  return list.stdout
    .trim()
    .split("\n")
    .map((line) => line.split(",").map((f) => f.trim()))
    .map((f) => ({ name: f[2], learner: f[5] === "true" }));
}

/** Waits until the cluster lists exactly `names`, every one a healthy voting member. */
async function votersAre(names: readonly string[], withinMs = 90_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  let seen = "";
  for (;;) {
    try {
      const list = memberList(0);
      seen = JSON.stringify(list);
      const voters = list.filter((m) => !m.learner).map((m) => m.name);
      const health = lab.etcdctl(
        0,
        etcdDir,
        names.map((name) => lab.clientUrl(p.controls.findIndex((c) => c.name === name))),
        ["endpoint", "health"],
      );
      if (
        voters.sort().join() === [...names].sort().join() &&
        list.length === names.length &&
        health.status === 0
      ) {
        return;
      }
    } catch (err) {
      seen = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`the voting members are not ${names.join(", ")}: ${seen}\n${lab.logs()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Puts a counter through the current members every 300 ms; records every failed put. */
class Writer {
  readonly failures: { at: number; error: string }[] = [];
  writes = 0;
  endpoints: string[] = [];
  private timer?: NodeJS.Timeout;
  private busy = false;

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) {
        return;
      }
      this.busy = true;
      const at = Date.now();
      const child = spawn("ip", [
        "netns",
        "exec",
        lab.ns(0),
        path.join(etcdDir, "etcdctl"),
        `--endpoints=${this.endpoints.join(",")}`,
        `--cacert=${lab.client.ca}`,
        `--cert=${lab.client.cert}`,
        `--key=${lab.client.key}`,
        "--dial-timeout=2s",
        "--command-timeout=4s",
        "put",
        "/hardway/writer",
        String(this.writes),
      ]);
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("close", (code) => {
        this.writes++;
        if (code !== 0) {
          this.failures.push({ at, error: stderr.trim() });
        }
        this.busy = false;
      });
    }, 300);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

describeIfAvailable(
  skipReason,
  `etcd ${defaultVersions.etcd} members joining and leaving a running cluster, 1 → 3 → 5 → 3`,
  () => {
    const writer = new Writer();
    const value = crypto.randomBytes(8).toString("hex");
    const started = Date.now();
    const timings: string[] = [];

    /** The step's files for `n` members on every member still running. */
    function writeMembers(n: number, running: readonly number[]): void {
      for (const i of running) {
        fs.writeFileSync(
          lab.memberArgs(i, at(n), etcdDir).join?.membersFile ?? "",
          renderEtcdMembers(at(n)),
        );
      }
    }

    /** As the etcd step's update does for new targets: one at a time, each a voter before the next. */
    async function grow(from: number, to: number): Promise<void> {
      const began = Date.now();
      writeMembers(to, [...Array(from).keys()]);
      for (let i = from; i < to; i++) {
        lab.start(i, lab.memberArgs(i, at(to), etcdDir));
        await votersAre(at(i + 1).map((m) => m.name));
        writer.endpoints = at(i + 1).map((_, j) => lab.clientUrl(j));
      }
      timings.push(`${from} → ${to}: ${((Date.now() - began) / 1000).toFixed(1)} s`);
    }

    /** Runs etcd-member.sh leave inside member `i`, as the step does before removing it. */
    function leave(i: number) {
      const argv = etcdLeaveCommand();
      const files = lab.memberArgs(i, at(5), etcdDir).join;
      // The lab's paths instead of the node's; the name is the node's host name on a VM.
      const node = defaultEtcdJoinFiles();
      const swap: Record<string, string> = {
        [node.memberScript]: path.join(NODE_ASSETS_DIR, "etcd-member.sh"),
        [node.membersFile]: files?.membersFile ?? "",
        [node.etcdctl]: files?.etcdctl ?? "",
        [CA_FILES["etcd-ca"].cert]: lab.client.ca,
        [node.clientCert]: lab.client.cert,
        [node.clientKey]: lab.client.key,
      };
      const [command, ...args] = [...argv.map((a) => swap[a] ?? a), "--name", p.controls[i].name];
      return inNs(lab.ns(i), command, args, 60_000);
    }

    beforeAll(async () => {
      await lab.setUp();
      lab.start(0, lab.memberArgs(0, at(1), etcdDir));
      await votersAre(["control0"]);
      expect(
        lab.etcdctl(0, etcdDir, [lab.clientUrl(0)], ["put", "/hardway/kept", value]).status,
      ).toBe(0);
      writer.endpoints = [lab.clientUrl(0)];
      writer.start();
    }, 120_000);

    afterAll(() => {
      writer.stop();
      lab.cleanUp();
      console.log(
        `etcd membership test: ${timings.join("; ")}; ${writer.writes} writes, ${writer.failures.length} failed; wall time ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    });

    it("renders the leave command from the node's own files, the same on every member", () => {
      expect(etcdLeaveCommand()).toEqual([
        "bash",
        "/usr/local/lib/hardway/etcd-member.sh",
        "leave",
        "--endpoint",
        "https://127.0.0.1:2379",
        "--members",
        "/etc/etcd/members",
        "--cacert",
        "/etc/kubernetes/pki/etcd/ca.crt",
        "--cert",
        "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "--key",
        "/etc/kubernetes/pki/etcd/healthcheck-client.key",
        "--etcdctl",
        "/usr/local/bin/etcdctl",
      ]);
    });

    it("grows from 1 to 3: each new member joins as a learner, then votes once it caught up", async () => {
      const pid0 = lab.members[0]?.pid;
      await grow(1, 3);
      expect(lab.members[0]?.pid).toBe(pid0);
      for (const i of [1, 2]) {
        const log = fs.readFileSync(lab.log(i), "utf8");
        expect(log).toContain(`adding ${p.controls[i].name}`);
        expect(log).toContain("as a learner");
        expect(log).toContain("is a voting member now");
      }
      expect(writer.failures).toEqual([]);
    }, 240_000);

    it("grows from 3 to 5, restarting none of the three", async () => {
      const pids = [0, 1, 2].map((i) => lab.members[i]?.pid);
      await grow(3, 5);
      expect([0, 1, 2].map((i) => lab.members[i]?.pid)).toEqual(pids);
      expect(writer.failures).toEqual([]);
    }, 240_000);

    it("shrinks from 5 to 3: each leaving member is removed while it runs, then stopped", async () => {
      const began = Date.now();
      writeMembers(3, [0, 1, 2]);
      let staying = [0, 1, 2, 3, 4];
      for (const i of [3, 4]) {
        const left = leave(i);
        expect(`${left.stdout}${left.stderr}`).toContain(`${p.controls[i].name} (member `);
        expect(left.status).toBe(0);
        staying = staying.filter((j) => j !== i);
        writer.endpoints = staying.map((j) => lab.clientUrl(j));
        await lab.stop(i);
        await votersAre(staying.map((j) => p.controls[j].name));
      }
      timings.push(`5 → 3: ${((Date.now() - began) / 1000).toFixed(1)} s`);
      expect(writer.failures).toEqual([]);
    }, 240_000);

    it("refuses to remove a member when the others would have no quorum, and keeps it", async () => {
      // Two of three down: removing the third would leave one healthy of two voting members.
      writer.stop();
      await lab.stop(1, "SIGKILL");
      await lab.stop(2, "SIGKILL");
      const refused = leave(0);
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain(
        "removing control0 would leave 0 healthy of 2 voting members, fewer than their quorum of 2",
      );
      lab.start(1, lab.memberArgs(1, at(3), etcdDir));
      lab.start(2, lab.memberArgs(2, at(3), etcdDir));
      await votersAre(["control0", "control1", "control2"]);
    }, 240_000);

    it("kept the data written before the first change, and its member IDs", () => {
      const read = lab.etcdctl(
        2,
        etcdDir,
        [lab.clientUrl(2)],
        ["get", "/hardway/kept", "--print-value-only"],
      );
      expect(read.stdout.trim()).toBe(value);
      // Writes went on through every change (how many depends on the load: etcdctl is slow to start).
      expect(writer.writes).toBeGreaterThan(5);
    });
  },
);
