/**
 * What an e2e run leaves if it is killed before it cleans up (SIGKILL, a closed terminal): its
 * network namespace with the QEMUs and dnsmasq still running in it, and its work directory with
 * the stack's backend, kubeconfig and SSH key. Each run records itself in its work directory;
 * the next run removes the leftovers of runs whose runner is gone. The choice is pure.
 */
export const RUN_RECORD = "run.json";

export interface RunRecord {
  /** The network namespace the run made. */
  readonly namespace: string;
  /** The outer runner's process id. */
  readonly runnerPid: number;
  /** When the run started (ISO time). */
  readonly started: string;
  /** HARDWAY_E2E_KEEP: the cluster was kept for a look on purpose; never removed for it. */
  readonly kept?: boolean;
}

/** A recorded run found on disk: its work directory and what it recorded there. */
export interface FoundRun {
  readonly work: string;
  readonly record: RunRecord;
}

/** Parses a run record; undefined when the text is not one (a torn write, another file). */
export function parseRunRecord(text: string): RunRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const record = value as Partial<RunRecord>;
  return typeof record.namespace === "string" &&
    /^hwe2e-[0-9a-f]+$/.test(record.namespace) &&
    Number.isInteger(record.runnerPid) &&
    typeof record.started === "string" &&
    (record.kept === undefined || typeof record.kept === "boolean")
    ? (record as RunRecord)
    : undefined;
}

/**
 * The runs whose runner no longer exists: theirs to remove. A live runner's run, and a run kept
 * on purpose, are never touched.
 */
export function abandonedRuns(
  runs: readonly FoundRun[],
  isAlive: (pid: number) => boolean,
): FoundRun[] {
  return runs.filter((run) => run.record.kept !== true && !isAlive(run.record.runnerPid));
}

/** Work directories are `<tmpdir>/hardway-e2e-XXXXXX` (mkdtemp); only those are looked at. */
export function isWorkDir(entry: string): boolean {
  return /^hardway-e2e-[A-Za-z0-9]{6}$/.test(entry);
}
