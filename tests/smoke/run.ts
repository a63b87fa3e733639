/** Runs a program without a shell and collects its output; shared by the smoke and e2e runners. */
import { spawn } from "node:child_process";
import { CommandResult } from "./clusterApi";

export interface RunOptions {
  /** Written to the program's stdin, which is closed afterwards. */
  readonly input?: string;
  /** The program is killed after this long and the result says so. */
  readonly timeoutMs?: number;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Resolves with the exit code and output; rejects only when the program cannot be started. */
export function runCommand(
  program: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === "ENOENT" ? new Error(`${program} is not installed or not on PATH`) : err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const err = Buffer.concat(stderr).toString("utf8");
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: timedOut ? `${err}\n${program} killed after ${options.timeoutMs}ms` : err,
      });
    });
    // A program that exits without reading its stdin must not crash the runner with EPIPE.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}
