/** The e2e run's bookkeeping: timed phases and the verdict on the second `up`. Pure. */
import { seconds } from "../smoke/checks";

export interface PhaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly detail: string;
  /** Not run, for the reason in `detail` (the run's deadline); does not fail the run. */
  readonly skipped?: boolean;
}

/**
 * Runs one phase, prints its start and its PASS/FAIL line with the time it took, and records it.
 * A phase fails when `body` throws or resolves with `{ ok: false }`.
 */
export async function runPhase(
  results: PhaseResult[],
  name: string,
  body: () => Promise<{ ok: boolean; detail: string }>,
  log: (line: string) => void,
  now: () => number = Date.now,
): Promise<boolean> {
  log(`phase ${name}: starting`);
  const started = now();
  let outcome: { ok: boolean; detail: string };
  try {
    outcome = await body();
  } catch (err) {
    outcome = { ok: false, detail: (err as Error).message };
  }
  const durationMs = now() - started;
  results.push({ name, ...outcome, durationMs });
  log(`${outcome.ok ? "PASS" : "FAIL"} phase ${name} (${seconds(durationMs)}): ${outcome.detail}`);
  return outcome.ok;
}

/**
 * When a run must have ended (its destroy and leak check included), in ms since the epoch, and
 * how long those last steps are given.
 */
export interface Deadline {
  readonly atMs: number;
  readonly reserveMs: number;
}

/**
 * The deadline in HARDWAY_E2E_DEADLINE (Unix seconds; CI sets it to the end of its own time),
 * with `reserveMs` kept for destroy and the leak check, or none. Refuses anything but a number.
 * Pure.
 */
export function parseDeadline(value: string | undefined, reserveMs: number): Deadline | undefined {
  if (value === undefined || value.trim() === "") {
    return undefined;
  }
  if (!/^\d+$/.test(value.trim())) {
    throw new Error(`HARDWAY_E2E_DEADLINE must be Unix seconds, not ${JSON.stringify(value)}`);
  }
  return { atMs: Number(value.trim()) * 1000, reserveMs };
}

/**
 * Why a phase that may take `expectedMs` does not start at `nowMs`: it would end after the
 * deadline less the reserve, so a run cut off in its middle would leave its VMs running and
 * report nothing. Undefined when it fits, or when there is no deadline. Pure.
 */
export function tooLate(
  expectedMs: number,
  nowMs: number,
  deadline: Deadline | undefined,
): string | undefined {
  if (deadline === undefined) {
    return undefined;
  }
  const leftMs = deadline.atMs - deadline.reserveMs - nowMs;
  if (leftMs >= expectedMs) {
    return undefined;
  }
  return `not run: ${seconds(Math.max(0, leftMs))} left before the run's deadline (HARDWAY_E2E_DEADLINE, less ${seconds(deadline.reserveMs)} for destroy and the leak check), and it may take ${seconds(expectedMs)}`;
}

/**
 * runPhase, unless the phase may not end before the deadline (tooLate): then it is recorded as
 * skipped with the reason, and `false` says it did not run.
 */
export async function runPhaseBefore(
  deadline: Deadline | undefined,
  expectedMs: number,
  results: PhaseResult[],
  name: string,
  body: () => Promise<{ ok: boolean; detail: string }>,
  log: (line: string) => void,
  now: () => number = Date.now,
): Promise<boolean> {
  const late = tooLate(expectedMs, now(), deadline);
  if (late === undefined) {
    return runPhase(results, name, body, log, now);
  }
  skipPhase(results, name, late, log);
  return false;
}

/** Records a phase that did not run, and why. */
export function skipPhase(
  results: PhaseResult[],
  name: string,
  why: string,
  log: (line: string) => void,
): void {
  results.push({ name, ok: true, skipped: true, durationMs: 0, detail: why });
  log(`SKIP phase ${name}: ${why}`);
}

/** How much of a failed phase's detail the summary repeats. */
const SUMMARY_DETAIL_CHARS = 4000;

/**
 * One line per phase, then why each failed phase failed (the end of its detail, so a log read
 * from its tail, as CI shows it, still names the cause), and the overall verdict.
 */
export function summarize(results: readonly PhaseResult[]): { ok: boolean; lines: string[] } {
  const failed = results.filter((r) => !r.ok);
  const skipped = results.filter((r) => r.skipped === true);
  const ran = results.length - skipped.length;
  const ok = ran > 0 && failed.length === 0;
  const notRun = skipped.length === 0 ? "" : ` (not run: ${skipped.map((r) => r.name).join(", ")})`;
  return {
    ok,
    lines: [
      ...results.map(
        (r) =>
          `  ${r.skipped === true ? "SKIP" : r.ok ? "PASS" : "FAIL"}  ${r.name.padEnd(12)} ${seconds(r.durationMs).padStart(8)}`,
      ),
      ...skipped.map((r) => `why ${r.name} did not run: ${r.detail}`),
      ...failed.map((r) => `why ${r.name} failed: ${r.detail.slice(-SUMMARY_DETAIL_CHARS)}`),
      ok
        ? `E2E PASS: ${ran} phases${notRun}`
        : `E2E FAIL: ${failed.map((r) => r.name).join(", ") || "nothing ran"}${notRun}`,
    ],
  };
}

/**
 * One run's phases as a line of the runs' history (JSON Lines): its topology, the commit it
 * ran, when it ended, and each phase's verdict, seconds and detail. The e2e's times vary by
 * many minutes between runs of the same code on the same machine, so a time means something
 * only beside earlier ones. Pure.
 */
export function historyLine(
  run: { topology: string; commit: string; finished: Date },
  results: readonly PhaseResult[],
): string {
  return JSON.stringify({
    topology: run.topology,
    commit: run.commit,
    finished: run.finished.toISOString(),
    ok: summarize(results).ok,
    phases: results.map((r) => ({
      name: r.name,
      ok: r.ok,
      ...(r.skipped === true ? { skipped: true } : {}),
      seconds: Math.round(r.durationMs / 100) / 10,
      detail: r.detail,
    })),
  });
}

/** The part of the Automation API's UpdateSummary the verdict reads. */
export interface ChangeSummary {
  readonly resourceChanges?: Readonly<Record<string, number>>;
}

/** A converged stack's second `up` touches nothing: every resource is `same`. */
export function noChangesVerdict(summary: ChangeSummary): { ok: boolean; detail: string } {
  const changes = summary.resourceChanges;
  if (changes === undefined) {
    return { ok: false, detail: "the update summary has no resourceChanges" };
  }
  const changed = Object.entries(changes).filter(([op, count]) => op !== "same" && count > 0);
  const same = changes.same ?? 0;
  if (changed.length > 0) {
    return {
      ok: false,
      detail: `the second up changed resources: ${changed.map(([op, n]) => `${op} ${n}`).join(", ")}`,
    };
  }
  if (same === 0) {
    return { ok: false, detail: "the second up saw no resources at all" };
  }
  return { ok: true, detail: `no changes (${same} resources same)` };
}

/**
 * The error diagnostics in a `pulumi --event-log` file (one JSON engine event per line), as
 * "<resource name>: <message>" with Pulumi's colour markup removed. Lines that are not events
 * (a log cut short by a kill) are skipped.
 */
export function errorDiagnostics(eventLog: string): string[] {
  const errors: string[] = [];
  for (const line of eventLog.split("\n")) {
    let event: { diagnosticEvent?: { urn?: string; message?: string; severity?: string } };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      continue;
    }
    const diagnostic = event.diagnosticEvent;
    if (diagnostic?.severity !== "error" || diagnostic.message === undefined) {
      continue;
    }
    const message = diagnostic.message.replace(/<\{%[^%]*%\}>/g, "").trim();
    const resource = diagnostic.urn?.split("::").pop();
    errors.push(resource ? `${resource}: ${message}` : message);
  }
  return errors;
}

/** When one resource's step began and ended in a run, from its event log. */
export interface StepSpan {
  readonly urn: string;
  readonly type: string;
  readonly op: string;
  /** Unix seconds. */
  readonly start: number;
  readonly end: number;
}

/**
 * Each resource step that did something (not `same`) in a `pulumi up --event-log` file: from its
 * resourcePreEvent to its resOutputsEvent, the preview's planned events left out. Pure.
 */
export function stepSpans(eventLog: string): StepSpan[] {
  const started = new Map<string, { type: string; op: string; at: number }>();
  const spans: StepSpan[] = [];
  for (const line of eventLog.split("\n")) {
    let event: {
      timestamp?: number;
      resourcePreEvent?: {
        metadata?: { urn: string; type: string; op: string };
        planning?: boolean;
      };
      resOutputsEvent?: {
        metadata?: { urn: string; type: string; op: string };
        planning?: boolean;
      };
    };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      continue;
    }
    // The preview `up` runs first reports the same resources as planned: not what ran.
    const pre = event.resourcePreEvent?.planning ? undefined : event.resourcePreEvent?.metadata;
    const done = event.resOutputsEvent?.planning ? undefined : event.resOutputsEvent?.metadata;
    if (pre !== undefined && pre.op !== "same" && event.timestamp !== undefined) {
      started.set(pre.urn, { type: pre.type, op: pre.op, at: event.timestamp });
    }
    if (done !== undefined && event.timestamp !== undefined) {
      const begin = started.get(done.urn);
      if (begin !== undefined) {
        spans.push({
          urn: done.urn,
          type: begin.type,
          op: begin.op,
          start: begin.at,
          end: event.timestamp,
        });
        started.delete(done.urn);
      }
    }
  }
  return spans;
}
