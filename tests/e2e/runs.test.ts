import { spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { removeAbandonedRuns } from "./local";
import { FoundRun, RUN_RECORD, RunRecord, abandonedRuns, isWorkDir, parseRunRecord } from "./runs";
import { itIfAvailable } from "../harness/prerequisites";

const run = (work: string, runnerPid: number, kept?: boolean): FoundRun => ({
  work,
  record: { namespace: "hwe2e-abc123", runnerPid, started: "2026-11-21T21:45:00.000Z", kept },
});

describe("abandonedRuns", () => {
  it("picks the runs whose runner is gone and leaves live and kept ones alone", () => {
    const runs = [
      run("/tmp/hardway-e2e-aaaaaa", 10),
      run("/tmp/hardway-e2e-bbbbbb", 20),
      run("/tmp/hardway-e2e-cccccc", 30, true),
    ];
    const alive = new Set([20]);
    expect(abandonedRuns(runs, (pid) => alive.has(pid)).map((r) => r.work)).toEqual([
      "/tmp/hardway-e2e-aaaaaa",
    ]);
    expect(abandonedRuns(runs, () => true)).toEqual([]);
  });
});

describe("parseRunRecord", () => {
  it("reads what a run writes", () => {
    expect(
      parseRunRecord(
        JSON.stringify({
          namespace: "hwe2e-0a1b2c",
          runnerPid: 4242,
          started: "2026-11-21T21:45:00Z",
        }),
      ),
    ).toEqual({ namespace: "hwe2e-0a1b2c", runnerPid: 4242, started: "2026-11-21T21:45:00Z" });
    expect(
      parseRunRecord(
        JSON.stringify({ namespace: "hwe2e-0a1b2c", runnerPid: 4242, started: "x", kept: true }),
      )?.kept,
    ).toBe(true);
  });

  it("refuses torn writes and records that could name another namespace", () => {
    expect(parseRunRecord('{"namespace": "hwe2e-0a')).toBeUndefined();
    expect(parseRunRecord("[]")).toBeUndefined();
    expect(
      parseRunRecord(JSON.stringify({ namespace: "default", runnerPid: 1, started: "x" })),
    ).toBeUndefined();
    expect(
      parseRunRecord(JSON.stringify({ namespace: "hwe2e-0a1b2c", runnerPid: "1", started: "x" })),
    ).toBeUndefined();
    expect(
      parseRunRecord(
        JSON.stringify({ namespace: "hwe2e-0a1b2c", runnerPid: 1, started: "x", kept: "yes" }),
      ),
    ).toBeUndefined();
  });
});

describe("isWorkDir", () => {
  it("matches only a run's own work directory", () => {
    expect(isWorkDir("hardway-e2e-pZ4t7O")).toBe(true);
    expect(isWorkDir("hardway-e2e-cluster-Ab12Cd")).toBe(false);
    expect(isWorkDir("hardway-e2e-backend-Ab12Cd")).toBe(false);
    expect(isWorkDir("hardway-engine-Ab12Cd")).toBe(false);
  });
});

describe("removeAbandonedRuns, for real (root: network namespaces)", () => {
  const skip = process.getuid?.() !== 0 ? "needs root for network namespaces" : undefined;
  itIfAvailable(
    skip,
    "kills what runs in a killed run's namespace and removes it with its files, and nothing else",
    async () => {
      const tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-runs-test-"));
      const suffix = crypto.randomBytes(3).toString("hex");
      const make = (name: string, record: RunRecord) => {
        const work = path.join(tmpdir, name);
        fs.mkdirSync(path.join(work, "tmp"), { recursive: true });
        fs.writeFileSync(path.join(work, RUN_RECORD), JSON.stringify(record));
        spawnSync("ip", ["netns", "add", record.namespace]);
        return work;
      };
      // A pid that no longer exists: a child that has exited.
      const deadPid = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
      const started = "2026-11-21T21:45:00.000Z";
      const dead = make("hardway-e2e-dead01", {
        namespace: `hwe2e-d${suffix}`,
        runnerPid: Number(deadPid),
        started,
      });
      const live = make("hardway-e2e-live01", {
        namespace: `hwe2e-a${suffix}`,
        runnerPid: process.pid,
        started,
      });
      const sleeper = spawn("ip", ["netns", "exec", `hwe2e-d${suffix}`, "sleep", "600"], {
        stdio: "ignore",
      });
      try {
        for (let i = 0; i < 50 && !netnsPids(`hwe2e-d${suffix}`); i++) {
          spawnSync("sleep", ["0.1"]);
        }
        expect(netnsPids(`hwe2e-d${suffix}`)).not.toBe("");
        const exited = new Promise<boolean>((resolve) => {
          sleeper.on("exit", () => resolve(true));
          setTimeout(() => resolve(false), 5000);
        });
        removeAbandonedRuns(tmpdir);
        expect(await exited).toBe(true);
        expect(fs.existsSync(dead)).toBe(false);
        expect(namespaces()).not.toContain(`hwe2e-d${suffix}`);
        expect(fs.existsSync(live)).toBe(true);
        expect(namespaces()).toContain(`hwe2e-a${suffix}`);
      } finally {
        sleeper.kill("SIGKILL");
        spawnSync("ip", ["netns", "del", `hwe2e-d${suffix}`]);
        spawnSync("ip", ["netns", "del", `hwe2e-a${suffix}`]);
        fs.rmSync(tmpdir, { recursive: true, force: true });
      }
    },
  );
});

function netnsPids(namespace: string): string {
  return spawnSync("ip", ["netns", "pids", namespace], { encoding: "utf8" }).stdout.trim();
}

function namespaces(): string {
  return spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
}
