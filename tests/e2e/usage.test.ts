import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import {
  GUEST_USAGE_SCRIPT,
  busyCores,
  cpuTicks,
  hostUsage,
  metered,
  parseGuestUsage,
  readQemuTimes,
  usageLine,
} from "./usage";
import * as os from "node:os";
import * as path from "node:path";

describe("cpuTicks", () => {
  it("reads utime + stime of this very process from the kernel's own /proc/self/stat", () => {
    const ticks = cpuTicks(fs.readFileSync("/proc/self/stat", "utf8"));
    // Jest has run for a while: some CPU time, less than a day of it.
    expect(ticks).toBeGreaterThan(0);
    expect(ticks).toBeLessThan(100 * 86_400);
  });

  it("counts fields from after the command name, which may hold spaces and parentheses", () => {
    const stat =
      "4242 (qemu (x) 8) S 1 4242 4242 0 -1 4194560 9 0 0 0 1500 250 0 0 20 0 3 0 77 0 0";
    expect(cpuTicks(stat)).toBe(1750);
    expect(() => cpuTicks("garbage")).toThrow(/not a \/proc\/<pid>\/stat line/);
  });
});

describe("readQemuTimes", () => {
  it("reads each VM's pid file and that process's CPU time; a VM whose process is gone is left out", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "usage-"));
    try {
      for (const [node, pid] of [
        ["control0", String(process.pid)],
        ["worker1", "999999999"],
      ]) {
        fs.mkdirSync(path.join(root, "s", "vms", node), { recursive: true });
        fs.writeFileSync(path.join(root, "s", "vms", node, "qemu.pid"), `${pid}\n`);
      }
      fs.mkdirSync(path.join(root, "s", "vms", "gateway"));
      const times = readQemuTimes("s", root);
      expect(Object.keys(times)).toEqual(["control0"]);
      expect(times.control0.pid).toBe(process.pid);
      expect(times.control0.ticks).toBeGreaterThan(0);
      expect(readQemuTimes("none", root)).toEqual({});
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("busyCores", () => {
  it("divides each QEMU's CPU time by the time between the readings", () => {
    const before = { control0: { pid: 10, ticks: 1000 }, gone: { pid: 11, ticks: 5 } };
    const after = {
      control0: { pid: 10, ticks: 13_000 }, // 120 s of CPU in 100 s: 1.2 cores
      worker1: { pid: 12, ticks: 2000 }, // started meanwhile: all of its 20 s
      worker0: { pid: 99, ticks: 500 }, // restarted (another pid): from its start
    };
    expect(busyCores(before, after, 100_000)).toEqual({
      control0: 1.2,
      worker1: 0.2,
      worker0: 0.05,
    });
    expect(busyCores(before, after, 0).control0).toBe(0);
  });
});

describe("GUEST_USAGE_SCRIPT and parseGuestUsage", () => {
  it("reads what the script prints on this machine's own kernel", () => {
    const run = spawnSync("bash", ["-c", GUEST_USAGE_SCRIPT], { encoding: "utf8" });
    expect(run.status).toBe(0);
    const usage = parseGuestUsage(run.stdout);
    expect(usage.load1).toBeGreaterThanOrEqual(0);
    expect(usage.availableMiB).toBeGreaterThan(0);
    // A kernel without pressure stall information leaves the stalls unknown, never wrong.
    const psi = fs.existsSync("/proc/pressure/cpu");
    expect(usage.stall.cpu === undefined).toBe(!psi);
  });

  it("takes each resource's avg60 'some' share", () => {
    const text = [
      "3.10 2.00 1.00 4/200 999",
      "MemAvailable:     524288 kB",
      "cpu some avg10=80.00 avg60=61.52 avg300=40.00 total=1",
      "memory some avg10=0.00 avg60=0.40 avg300=0.00 total=2",
      "io ",
    ].join("\n");
    expect(parseGuestUsage(text)).toEqual({
      load1: 3.1,
      availableMiB: 512,
      stall: { cpu: 61.52, memory: 0.4, io: undefined },
    });
    expect(() => parseGuestUsage("Permission denied")).toThrow(/not a guest's usage/);
  });
});

describe("usageLine and hostUsage", () => {
  it("names each VM's busy host cores, and the host's and each guest's load, memory and stalls", () => {
    const host = { load1: 5.4, availableMiB: 9000, stall: { cpu: 78, memory: 0, io: 1.5 } };
    expect(
      usageLine(
        "workers 2 → 1",
        host,
        { worker0: 0.31, control0: 1.46 },
        {
          control0: { load1: 7.2, availableMiB: 300, stall: { cpu: 88, memory: 12.4, io: 3 } },
          gateway: "no answer in 60 s",
        },
      ),
    ).toBe(
      [
        "usage during workers 2 → 1: host cores busy per VM: control0 1.46, worker0 0.31",
        "  at its end (last minute): host: load 5.4, 9000 MiB free, stalled cpu 78% memory 0% io 2%; control0: load 7.2, 300 MiB free, stalled cpu 88% memory 12% io 3%; gateway: no answer in 60 s",
      ].join("\n"),
    );
    expect(usageLine("up (cold)", host, {}, {}).split("\n")[0]).toBe(
      "usage during up (cold): host cores busy per VM: no VM",
    );
  });

  it("reads this machine's own /proc as a guest's", () => {
    const usage = hostUsage();
    expect(usage.availableMiB).toBeGreaterThan(0);
    expect(usage.stall.io === undefined).toBe(!fs.existsSync("/proc/pressure/io"));
  });
});

describe("metered", () => {
  it("runs the phase, then logs its usage; a guest that fails or is silent is named, never fatal", async () => {
    const lines: string[] = [];
    const answers: Record<string, () => Promise<string>> = {
      control0: () =>
        Promise.resolve("1.00 1 1 1/1 1\nMemAvailable: 1048576 kB\ncpu some avg60=5.00\n"),
      worker0: () => Promise.reject(new Error("ssh worker0 exited 255: refused\nmore")),
      gateway: () => new Promise<string>(() => undefined),
    };
    const cluster = {
      outputs: { nodes: { control0: {}, worker0: {}, gateway: {} } },
      ssh: (node: string) => answers[node](),
    };
    const body = metered(
      "checks",
      "no-such-stack",
      cluster,
      (l) => lines.push(l),
      () => Promise.resolve({ ok: true, detail: "fine" }),
      50,
    );
    await expect(body()).resolves.toEqual({ ok: true, detail: "fine" });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^usage during checks: host cores busy per VM: no VM\n {2}at its end \(last minute\): host: load /,
    );
    expect(lines[0]).toContain(
      "; control0: load 1.0, 1024 MiB free, stalled cpu 5% memory ? io ?; gateway: no answer in 0.05 s; worker0: not asked (ssh worker0 exited 255: refused)",
    );
  });

  it("logs the usage of a phase that threw, and lets the error through", async () => {
    const lines: string[] = [];
    const body = metered(
      "up (cold)",
      "no-such-stack",
      { ssh: () => Promise.resolve("") },
      (l) => lines.push(l),
      () => Promise.reject(new Error("up failed")),
    );
    await expect(body()).rejects.toThrow("up failed");
    expect(lines).toEqual([expect.stringMatching(/^usage during up \(cold\): host cores busy/)]);
  });
});
