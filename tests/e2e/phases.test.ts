import {
  PhaseResult,
  errorDiagnostics,
  historyLine,
  noChangesVerdict,
  parseDeadline,
  runPhase,
  runPhaseBefore,
  stepSpans,
  summarize,
} from "./phases";

describe("noChangesVerdict", () => {
  it("passes when the second up left every resource the same", () => {
    expect(noChangesVerdict({ resourceChanges: { same: 84 } })).toEqual({
      ok: true,
      detail: "no changes (84 resources same)",
    });
    expect(noChangesVerdict({ resourceChanges: { same: 84, update: 0 } }).ok).toBe(true);
  });

  it("fails and names every kind of change", () => {
    expect(noChangesVerdict({ resourceChanges: { same: 80, update: 3, replace: 1 } })).toEqual({
      ok: false,
      detail: "the second up changed resources: update 3, replace 1",
    });
  });

  it("fails when the summary says nothing or saw no resources", () => {
    expect(noChangesVerdict({}).ok).toBe(false);
    expect(noChangesVerdict({ resourceChanges: {} })).toEqual({
      ok: false,
      detail: "the second up saw no resources at all",
    });
  });
});

describe("runPhase and summarize", () => {
  it("times each phase, turns a throw into a failure and reports overall", async () => {
    let clock = 0;
    const now = () => clock;
    const results: PhaseResult[] = [];
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    expect(
      await runPhase(
        results,
        "up (cold)",
        () => {
          clock += 90_500;
          return Promise.resolve({ ok: true, detail: "succeeded" });
        },
        log,
        now,
      ),
    ).toBe(true);
    expect(
      await runPhase(
        results,
        "smoke",
        () => Promise.reject(new Error("kubectl missing")),
        log,
        now,
      ),
    ).toBe(false);
    expect(lines).toEqual([
      "phase up (cold): starting",
      "PASS phase up (cold) (90.5s): succeeded",
      "phase smoke: starting",
      "FAIL phase smoke (0.0s): kubectl missing",
    ]);
    const summary = summarize(results);
    expect(summary.ok).toBe(false);
    expect(summary.lines.slice(2)).toEqual([
      "why smoke failed: kubectl missing",
      "E2E FAIL: smoke",
    ]);
    expect(summarize(results.slice(0, 1)).lines[1]).toBe("E2E PASS: 1 phases");
    expect(summarize([]).ok).toBe(false);
  });
});

describe("summarize", () => {
  it("repeats the end of a long failure detail, where the cause is", () => {
    const detail = `${"progress ".repeat(1000)}etcd on control0: no leader`;
    const lines = summarize([{ name: "up (cold)", ok: false, durationMs: 699_000, detail }]).lines;
    expect(lines[1].length).toBeLessThan(4100);
    expect(lines[1]).toMatch(/^why up \(cold\) failed: .*etcd on control0: no leader$/);
  });
});

describe("errorDiagnostics", () => {
  // Lines as `pulumi up --event-log` writes them (PULUMI_DEBUG_COMMANDS=true), v3.248.0.
  const log = [
    '{"sequence":0,"timestamp":1795309000,"preludeEvent":{"config":{}}}',
    '{"sequence":9,"timestamp":1795309000,"diagnosticEvent":{"urn":"urn:pulumi:e2e::hardway::hardway:cluster:NodeStep$pulumi-nodejs:dynamic:Resource::k8s-etcd","prefix":"warning: ","message":"slow","color":"never","severity":"warning"}}',
    '{"sequence":10,"timestamp":1795309000,"diagnosticEvent":{"urn":"urn:pulumi:e2e::hardway::pulumi-nodejs:dynamic:Resource::k8s-etcd","prefix":"error: ","message":"<{%reset%}>etcd on control0: exit 1\\n<{%reset%}>","color":"raw","severity":"error"}}',
    '{"sequence":11,"timestamp":1795309000,"diagnosticEvent":{"prefix":"error: ","message":"invalid stack configuration\\n","color":"never","severity":"error"}}',
    '{"sequence":12,"timestamp":17953',
  ].join("\n");

  it("names each error with its resource, without colour markup, and skips the rest", () => {
    expect(errorDiagnostics(log)).toEqual([
      "k8s-etcd: etcd on control0: exit 1",
      "invalid stack configuration",
    ]);
  });

  it("finds nothing in an empty log", () => {
    expect(errorDiagnostics("")).toEqual([]);
  });
});

describe("stepSpans", () => {
  it("times what ran, leaving out the preview's planned steps and unchanged resources", () => {
    const event = (timestamp: number, kind: string, urn: string, op: string, planning = false) =>
      JSON.stringify({ timestamp, [kind]: { metadata: { urn, type: `t:${urn}`, op }, planning } });
    const log = [
      event(100, "resourcePreEvent", "a", "update", true),
      event(101, "resOutputsEvent", "a", "update", true),
      event(200, "resourcePreEvent", "a", "update"),
      event(210, "resourcePreEvent", "b", "same"),
      event(211, "resOutputsEvent", "b", "same"),
      event(260, "resOutputsEvent", "a", "update"),
      "not json",
    ].join("\n");
    expect(stepSpans(log)).toEqual([{ urn: "a", type: "t:a", op: "update", start: 200, end: 260 }]);
  });
});

describe("runPhaseBefore", () => {
  const deadline = parseDeadline("3600", 300_000);

  it("reads HARDWAY_E2E_DEADLINE as Unix seconds and refuses anything else", () => {
    expect(deadline).toEqual({ atMs: 3_600_000, reserveMs: 300_000 });
    expect(parseDeadline(undefined, 1)).toBeUndefined();
    expect(parseDeadline(" ", 1)).toBeUndefined();
    expect(() => parseDeadline("in an hour", 1)).toThrow(/Unix seconds, not "in an hour"/);
  });

  it("runs a phase that ends before the deadline less the reserve, and any without a deadline", async () => {
    const results: PhaseResult[] = [];
    const body = () => Promise.resolve({ ok: true, detail: "ran" });
    // 3600 s less 300 s reserved: a 900 s phase fits from 2400 s on the clock, not 2401.
    expect(
      await runPhaseBefore(
        deadline,
        900_000,
        results,
        "a",
        body,
        () => {},
        () => 2_400_000,
      ),
    ).toBe(true);
    expect(
      await runPhaseBefore(
        undefined,
        900_000,
        results,
        "b",
        body,
        () => {},
        () => 9e12,
      ),
    ).toBe(true);
    expect(results.map((r) => [r.name, r.skipped])).toEqual([
      ["a", undefined],
      ["b", undefined],
    ]);
  });

  it("leaves out a phase that would end after it, says why, and the run still passes", async () => {
    const results: PhaseResult[] = [
      { name: "up (cold)", ok: true, durationMs: 800_000, detail: "800 s" },
    ];
    const lines: string[] = [];
    let ran = false;
    const body = () => {
      ran = true;
      return Promise.resolve({ ok: true, detail: "ran" });
    };
    expect(
      await runPhaseBefore(
        deadline,
        900_000,
        results,
        "reboot",
        body,
        (l) => lines.push(l),
        () => 2_401_000,
      ),
    ).toBe(false);
    expect(ran).toBe(false);
    const why =
      "not run: 899.0s left before the run's deadline (HARDWAY_E2E_DEADLINE, less 300.0s for destroy and the leak check), and it may take 900.0s";
    expect(lines).toEqual([`SKIP phase reboot: ${why}`]);
    const summary = summarize(results);
    expect(summary.ok).toBe(true);
    expect(summary.lines).toEqual([
      "  PASS  up (cold)      800.0s",
      "  SKIP  reboot           0.0s",
      `why reboot did not run: ${why}`,
      "E2E PASS: 1 phases (not run: reboot)",
    ]);
    const history = JSON.parse(
      historyLine({ topology: "small", commit: "c", finished: new Date(0) }, results),
    ) as { phases: unknown[] };
    expect(history.phases[1]).toEqual({
      name: "reboot",
      ok: true,
      skipped: true,
      seconds: 0,
      detail: why,
    });
    // Past the deadline itself: nothing left, never a negative time.
    await runPhaseBefore(
      deadline,
      1,
      results,
      "late",
      body,
      (l) => lines.push(l),
      () => 4_000_000,
    );
    expect(lines[1]).toMatch(/^SKIP phase late: not run: 0\.0s left/);
  });

  it("a run whose phases were all left out did not pass", () => {
    expect(
      summarize([{ name: "reboot", ok: true, skipped: true, durationMs: 0, detail: "x" }]).ok,
    ).toBe(false);
  });
});

describe("historyLine", () => {
  it("records the run and each phase's verdict, seconds and detail on one JSON line", () => {
    const line = historyLine(
      { topology: "upgrade", commit: "3f749a7", finished: new Date("2026-12-05T04:00:00Z") },
      [
        { name: "up (cold)", ok: true, durationMs: 1060_340, detail: "1060 s" },
        { name: "checks", ok: false, durationMs: 99_560, detail: "no default ServiceAccount" },
      ],
    );
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      topology: "upgrade",
      commit: "3f749a7",
      finished: "2026-12-05T04:00:00.000Z",
      ok: false,
      phases: [
        { name: "up (cold)", ok: true, seconds: 1060.3, detail: "1060 s" },
        { name: "checks", ok: false, seconds: 99.6, detail: "no default ServiceAccount" },
      ],
    });
  });
});
