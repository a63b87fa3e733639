import { PhaseResult, noChangesVerdict, runPhase, summarize } from "./phases";

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
    expect(summary.lines[summary.lines.length - 1]).toBe("E2E FAIL: smoke");
    expect(summarize(results.slice(0, 1)).lines[1]).toBe("E2E PASS: 1 phases");
    expect(summarize([]).ok).toBe(false);
  });
});
