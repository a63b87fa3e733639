/**
 * The values the test tiers read from their build scripts' stdout. Such a script prints its
 * value and nothing else (its progress goes to stderr); a stray line would otherwise become part
 * of a path in the stack's config and fail far from its cause, so anything but the expected
 * shape is refused here, naming the script and what it printed.
 */
import * as path from "node:path";

const shown = (stdout: string) =>
  JSON.stringify(stdout.length > 400 ? `${stdout.slice(0, 400)}…` : stdout);

/** The one absolute path `script` printed (a trailing newline allowed). */
export function onePathFrom(script: string, stdout: string): string {
  const value = stdout.endsWith("\n") ? stdout.slice(0, -1) : stdout;
  if (value === "" || value.includes("\n") || !path.isAbsolute(value) || value.trim() !== value) {
    throw new Error(
      `${script} must print one absolute path on stdout and nothing else; it printed ${shown(stdout)}`,
    );
  }
  return value;
}

/**
 * The `export NAME=value` lines `script` printed, as NAME → value: values are shell-quoted
 * (`printf %q`) paths, and `$PATH` the only expansion, taken from `pathNow`.
 */
export function exportsFrom(
  script: string,
  stdout: string,
  pathNow: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of stdout.split("\n").filter((l) => l !== "")) {
    const match = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match === null) {
      throw new Error(
        `${script} must print only \`export NAME=value\` lines on stdout; it printed ${shown(line)}`,
      );
    }
    env[match[1]] = match[2].replace(/^'(.*)'$/, "$1").replace("$PATH", pathNow);
  }
  return env;
}
