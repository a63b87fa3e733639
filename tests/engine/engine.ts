/**
 * Drives the real Pulumi CLI the way a user types it (`pulumi preview`, `pulumi up --yes`,
 * `pulumi destroy --yes`) against this project, each test on a throwaway stack whose state lives
 * in a temporary file backend and whose config lives in a temporary file, so neither the
 * user's ~/.pulumi nor the checkout is touched. The CLI and plugins come from toolchain.sh.
 */
import { SpawnSyncReturns, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { exportsFrom } from "../harness/scriptOutput";

export const PROJECT_DIR = path.resolve(__dirname, "../..");
const TOOLCHAIN = path.join(__dirname, "toolchain.sh");

let cachedEnv: Record<string, string> | undefined;

/** The environment toolchain.sh sets up (building the toolchain the first time). */
export function toolchainEnv(): Record<string, string> {
  if (cachedEnv !== undefined) {
    return cachedEnv;
  }
  const result = spawnSync("bash", [TOOLCHAIN, "--env"], { encoding: "utf8", timeout: 3_600_000 });
  if (result.status !== 0) {
    throw new Error(`tests/engine/toolchain.sh failed:\n${result.stderr}`);
  }
  cachedEnv = exportsFrom(TOOLCHAIN, result.stdout, process.env.PATH ?? "");
  return cachedEnv;
}

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

export interface RunOptions {
  /** Words before `pulumi` (a namespace to run it in). */
  readonly prefix?: readonly string[];
  readonly timeoutMs?: number;
  readonly inherit?: boolean;
}

export interface EngineStack {
  readonly name: string;
  readonly backendDir: string;
  readonly configFile: string;
  /** Runs `pulumi <args> --stack <name>` in the project, with this stack's backend and config. */
  pulumi(args: readonly string[], options?: RunOptions): CliResult;
  /** The same, without blocking: the caller may watch the cluster while it runs. */
  pulumiAsync(args: readonly string[], options?: RunOptions): Promise<CliResult>;
  /** Like pulumi(), but throws with the output unless it exits 0. */
  must(args: readonly string[], options?: RunOptions): CliResult;
  /** The stack's state file as the file backend keeps it. */
  stateFile(): string;
  /** Removes the stack's backend and config (after destroy). */
  dispose(): void;
}

/** A new stack on a fresh backend; `config` maps `hardway:*` keys to values (JSON for objects). */
export function newStack(
  prefix: string,
  config: Readonly<Record<string, string>> = {},
): EngineStack {
  const env = toolchainEnv();
  const name = `${prefix}-${crypto.randomBytes(3).toString("hex")}`;
  const backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-engine-"));
  const configFile = path.join(backendDir, `Pulumi.${name}.yaml`);
  fs.writeFileSync(configFile, "config: {}\n");
  // pulumi-kubernetes writes a copy of the provider's kubeconfig (client key included) to
  // $TMPDIR each time it is configured and never removes it; here it lands in the backend dir.
  const tmpDir = path.join(backendDir, "tmp");
  fs.mkdirSync(tmpDir);
  const fullEnv = {
    ...process.env,
    ...env,
    TMPDIR: tmpDir,
    PULUMI_BACKEND_URL: `file://${backendDir}`,
    PULUMI_CONFIG_PASSPHRASE: "engine-test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    // Enables `--event-log` (as the Automation API does), which the e2e run reads errors from.
    PULUMI_DEBUG_COMMANDS: "true",
  };
  const pulumiBin = env.HARDWAY_PULUMI ?? "pulumi";
  const argvOf = (args: readonly string[], options: RunOptions) => [
    ...(options.prefix ?? []),
    pulumiBin,
    ...args,
    "--stack",
    name,
    "--non-interactive",
    ...(["config", "stack"].includes(args[0]) ? [] : ["--config-file", configFile]),
  ];
  const run = (args: readonly string[], options: RunOptions = {}): CliResult => {
    const started = Date.now();
    const argv = argvOf(args, options);
    const result: SpawnSyncReturns<string> = spawnSync(argv[0], argv.slice(1), {
      cwd: PROJECT_DIR,
      env: fullEnv,
      encoding: "utf8",
      timeout: options.timeoutMs ?? 900_000,
      maxBuffer: 64 * 1024 * 1024,
      stdio: options.inherit ? ["ignore", "inherit", "inherit"] : "pipe",
    });
    return {
      status: result.status,
      stdout: result.stdout ?? "",
      stderr: `${result.stderr ?? ""}${result.error ? String(result.error) : ""}`,
      seconds: (Date.now() - started) / 1000,
    };
  };
  const runAsync = (args: readonly string[], options: RunOptions = {}): Promise<CliResult> => {
    const started = Date.now();
    const argv = argvOf(args, options);
    return new Promise((resolve) => {
      const child = spawn(argv[0], argv.slice(1), {
        cwd: PROJECT_DIR,
        env: fullEnv,
        timeout: options.timeoutMs ?? 900_000,
        stdio: options.inherit ? ["ignore", "inherit", "inherit"] : "pipe",
      });
      let stdout = "";
      let stderr = "";
      child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("error", (err) => (stderr += String(err)));
      child.on("close", (status) =>
        resolve({ status, stdout, stderr, seconds: (Date.now() - started) / 1000 }),
      );
    });
  };
  const must = (args: readonly string[], options?: RunOptions) => {
    const result = run(args, options);
    if (result.status !== 0) {
      throw new Error(
        `pulumi ${args.join(" ")} exited ${result.status} after ${result.seconds.toFixed(1)} s:\n${result.stdout.slice(-6000)}\n${result.stderr.slice(-4000)}`,
      );
    }
    return result;
  };
  const initialised = run(["stack", "init"]);
  if (initialised.status !== 0) {
    throw new Error(`pulumi stack init failed:\n${initialised.stderr}`);
  }
  // `stack init` writes the passphrase's salt beside Pulumi.yaml; it belongs with the config.
  const written = path.join(PROJECT_DIR, `Pulumi.${name}.yaml`);
  if (fs.existsSync(written)) {
    fs.renameSync(written, configFile);
  }
  for (const [key, value] of Object.entries(config)) {
    must(["config", "set", "--config-file", configFile, key, value]);
  }
  return {
    name,
    backendDir,
    configFile,
    pulumi: run,
    pulumiAsync: runAsync,
    must,
    stateFile: () => path.join(backendDir, ".pulumi", "stacks", "hardway", `${name}.json`),
    dispose: () => fs.rmSync(backendDir, { recursive: true, force: true }),
  };
}

/** The resource changes of the stack's latest update, from `pulumi stack history`. */
export function lastChanges(stack: EngineStack): Record<string, number> {
  const history = stack.must(["stack", "history", "--json"]);
  const updates = JSON.parse(history.stdout) as { resourceChanges?: Record<string, number> }[];
  return updates[0]?.resourceChanges ?? {};
}

/** Operations other than `same` a preview plans, from `pulumi preview --json`. */
export interface PreviewSummary {
  readonly changes: Record<string, number>;
  readonly errors: string[];
  readonly steps: { readonly op: string; readonly urn: string }[];
}

export function parsePreview(stdout: string): PreviewSummary {
  const parsed = JSON.parse(stdout) as {
    changeSummary?: Record<string, number>;
    diagnostics?: { severity: string; message: string }[];
    steps?: { op: string; urn: string }[];
  };
  return {
    changes: parsed.changeSummary ?? {},
    errors: (parsed.diagnostics ?? []).filter((d) => d.severity === "error").map((d) => d.message),
    steps: parsed.steps ?? [],
  };
}

/** Prints a test's wall time the way the engine tier reports it. */
export function reportTime(what: string, seconds: number): void {
  console.log(`[engine] ${what}: ${seconds.toFixed(1)} s`);
}
