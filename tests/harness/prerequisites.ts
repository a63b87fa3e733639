/**
 * Tests that need what a machine may lack (root, a program, a release file built from Go
 * modules) run where it is there and are registered as skipped where it is not, with the reason
 * in their name: Jest's summary lists them, and tests/harness/summaryReporter.js repeats each one
 * at the end of the run. With HARDWAY_REQUIRE_ALL_TESTS=1 (CI sets it) a skipped test fails the
 * run, so a machine that lacks something cannot pass with fewer tests than a warm one.
 */
import { spawnSync } from "node:child_process";

/** The words a skipped test's name carries before its reason. */
export const NOT_RUN = "[not run here:";

const skippedTitle = (title: string, missing: string) => `${title} ${NOT_RUN} ${missing}]`;

/**
 * `describe(title, body)` when `missing` is undefined; otherwise the same block skipped, its
 * name saying what is missing.
 */
export function describeIfAvailable(
  missing: string | undefined,
  title: string,
  body: () => void,
): void {
  if (missing === undefined) {
    describe(title, body);
  } else {
    describe.skip(skippedTitle(title, missing), body);
  }
}

/** `it(title, test, timeout)` when `missing` is undefined; otherwise skipped, saying why. */
export function itIfAvailable(
  missing: string | undefined,
  title: string,
  test: () => unknown,
  timeout?: number,
): void {
  if (missing === undefined) {
    it(title, test as jest.ProvidesCallback, timeout);
  } else {
    it.skip(skippedTitle(title, missing), test as jest.ProvidesCallback, timeout);
  }
}

/** Whether a program is on PATH. */
export function onPath(program: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", program]).status === 0;
}

/** "needs X, Y on PATH" for the programs that are not there, or undefined when all are. */
export function missingPrograms(programs: readonly string[]): string | undefined {
  const missing = programs.filter((p) => !onPath(p));
  return missing.length === 0 ? undefined : `needs ${missing.join(", ")} on PATH`;
}
