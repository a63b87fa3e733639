/**
 * Prints one closing line, "N passed, N failed, N skipped", so any CI log reader can count
 * the tests without knowing Jest's own summary format, and above it every skipped test by file
 * and name (a test that cannot run here names what it lacks: tests/harness/prerequisites.ts).
 * With HARDWAY_REQUIRE_ALL_TESTS=1 a skipped test fails the run.
 */
class SummaryReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
    this.error = undefined;
  }

  onRunComplete(_contexts, results) {
    const skippedTests = [];
    for (const file of results.testResults) {
      for (const test of file.testResults) {
        if (test.status === "pending" || test.status === "todo" || test.status === "skipped") {
          skippedTests.push(
            `${file.testFilePath.replace(`${this.rootDir}/`, "")}: ${test.fullName}`,
          );
        }
      }
    }
    const skipped = results.numPendingTests + results.numTodoTests;
    const lines = skippedTests.map((name) => `skipped: ${name}`);
    lines.push(
      `${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped`,
    );
    if (skipped > 0 && process.env.HARDWAY_REQUIRE_ALL_TESTS === "1") {
      this.error = new Error(`${skipped} tests skipped and HARDWAY_REQUIRE_ALL_TESTS=1`);
      lines.push(`${this.error.message}: this machine lacks what they name`);
    }
    process.stdout.write(`\n${lines.join("\n")}\n`);
  }

  getLastError() {
    return this.error;
  }
}

module.exports = SummaryReporter;
