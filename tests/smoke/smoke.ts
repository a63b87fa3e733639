/**
 * `npm run smoke [-- --stack <name>]`: checks a converged cluster from the outside. It reads the
 * stack's outputs with the Pulumi CLI (`pulumi stack output --json --show-secrets`), which uses
 * whatever backend and stack the user already works with; the Automation API would need the
 * backend and passphrase passed in again. The e2e run hands its outputs in directly.
 */
import * as crypto from "node:crypto";
import * as path from "node:path";
import { SSH_USER } from "../../components/cluster/outputs";
import { AGNHOST_IMAGE, SmokeReport, SmokeTimeouts, realClock, runSmoke } from "./checks";
import { KubectlClusterApi, withCredentials } from "./kubectlClusterApi";
import { runCommand } from "./run";
import { StackOutputs, metallbPool, parseStackOutputs } from "./stackOutputs";

export const PROJECT_DIR = path.resolve(__dirname, "..", "..");

export const DEFAULT_TIMEOUTS: SmokeTimeouts = {
  podReadyMs: 300_000,
  claimBoundMs: 180_000,
  loadBalancerMs: 120_000,
  httpMs: 60_000,
  pollIntervalMs: 2_000,
};

function stackArgs(stack: string | undefined): string[] {
  return stack === undefined ? [] : ["--stack", stack];
}

/** The outputs and the configured MetalLB pool (if any) of a stack, through the Pulumi CLI. */
export async function readStackWithCli(
  cwd: string,
  stack: string | undefined,
): Promise<{ outputs: StackOutputs; configuredPool: string | undefined }> {
  const result = await runCommand(
    "pulumi",
    ["stack", "output", "--json", "--show-secrets", "--non-interactive", ...stackArgs(stack)],
    { cwd, timeoutMs: 60_000 },
  );
  if (result.code !== 0) {
    throw new Error(`pulumi stack output failed: ${result.stderr.trim()}`);
  }
  const outputs = parseStackOutputs(JSON.parse(result.stdout));
  // `config get` exits non-zero when the key is unset, which means the default pool.
  const pool = await runCommand(
    "pulumi",
    ["config", "get", "hardway:metallbPool", "--non-interactive", ...stackArgs(stack)],
    { cwd, timeoutMs: 60_000 },
  );
  return { outputs, configuredPool: pool.code === 0 ? pool.stdout.trim() : undefined };
}

/** Runs every smoke check against the cluster the outputs describe. */
export async function smokeFromOutputs(
  outputs: StackOutputs,
  configuredPool: string | undefined,
  log: (line: string) => void,
  timeouts: SmokeTimeouts = DEFAULT_TIMEOUTS,
): Promise<SmokeReport> {
  return withCredentials(outputs, (credentials) =>
    runSmoke(new KubectlClusterApi({ credentials, sshUser: SSH_USER }), {
      namespace: `hardway-smoke-${crypto.randomBytes(3).toString("hex")}`,
      nodes: outputs.nodes,
      metallbPool: metallbPool(outputs, configuredPool),
      image: AGNHOST_IMAGE,
      timeouts,
      clock: realClock,
      log,
    }),
  );
}

export function parseSmokeArgs(argv: readonly string[]): { stack?: string } {
  if (argv.length === 0) {
    return {};
  }
  if (argv.length === 2 && argv[0] === "--stack" && argv[1] !== "") {
    return { stack: argv[1] };
  }
  throw new Error("usage: npm run smoke [-- --stack <name>]  (default: the selected stack)");
}

async function main(): Promise<number> {
  const { stack } = parseSmokeArgs(process.argv.slice(2));
  const log = (line: string) => console.log(`[smoke ${new Date().toISOString()}] ${line}`);
  log(`reading outputs of ${stack === undefined ? "the selected stack" : `stack ${stack}`}`);
  const { outputs, configuredPool } = await readStackWithCli(PROJECT_DIR, stack);
  const report = await smokeFromOutputs(outputs, configuredPool, log);
  return report.passed ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`SMOKE FAIL: ${err.message}`);
      process.exit(1);
    },
  );
}
