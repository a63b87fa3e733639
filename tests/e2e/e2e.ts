/**
 * `npm run e2e`: the whole life of a throwaway stack.
 *
 * Local mode (the default, `npm run e2e`, see local.ts): offline, on software-emulated VMs in
 * network and mount namespaces of its own, from a release mirror, a prebaked image, pod image
 * archives and the services' images (served by a registry in the namespace) and chart, all built
 * here: a cold `up` of the release one minor below the pins, checks, CoreDNS's and MetalLB's
 * checks (serviceChecks.ts), a no-op `up`, a worker added and removed again (scaleWorkers.ts),
 * the minor upgrade to the pins (upgrade.ts), a host reboot and `destroy`, each phase timed
 * (about 90 minutes on two cores, 41 of them the upgrade). `npm run e2e -- --no-upgrade` installs
 * the pins cold instead and skips the upgrade (CI's run, about 45 minutes). `npm run e2e -- --prepare` only makes the run's one-time builds
 * (CI makes them in the time a cold machine has left; with `--ha`, `--cilium` or `--no-upgrade`, those
 * of that run). HARDWAY_E2E_DEADLINE (Unix seconds; CI's
 * end) leaves out the phases that may not end before it, saying so (phases.ts, runPhaseBefore). `npm run e2e -- --ha` runs the
 * three-control-plane topology instead (highAvailability.ts): cold `up`, checks, a no-op `up`,
 * a rolling patch upgrade, failover, recovery, a member replaced from an empty disk, `destroy`
 * (not part of CI: about 90 minutes on two cores under TCG, more than CI's whole run may take;
 * the README has the times of the two runs that passed). `npm run e2e --
 * --cilium` runs the small cluster with Cilium as CNI and kube-proxy replacement (cold `up`,
 * checks, services, no-op `up`, `destroy`; ciliumArtifacts.ts builds its images and chart; not
 * part of CI: on two cores under TCG its agents' BPF compiles starve the control node's API
 * server and the cold `up` fails, README).
 *
 * Workstation mode (`npm run e2e -- --workstation`): the default stack on a machine with a
 * hypervisor and the internet. Preflight, a cold `up`, the smoke checks, a second `up` that must
 * change nothing, `destroy`, `stack rm`, and a check that the host holds nothing of the stack any
 * more. The stack lives on a file backend in a temp directory, so the user's own stacks and
 * backend are never touched. Teardown and the leak check run even when an earlier phase failed,
 * so a failed run does not leave VMs behind.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { smokeFromOutputs, PROJECT_DIR } from "../smoke/smoke";
import { StackOutputs, parseStackOutputs } from "../smoke/stackOutputs";
import { findLeaks, readHostState } from "./leaks";
import { PhaseResult, noChangesVerdict, runPhase, summarize } from "./phases";
import { CILIUM, HA, SMALL, UPGRADE, inside, prepareLocal, runLocal } from "./local";
import { preflight, realPreflightEnv } from "./preflight";

const log = (line: string) => console.log(`[e2e ${new Date().toISOString()}] ${line}`);
const stream = (text: string) => process.stdout.write(text);

async function main(argv: readonly string[]): Promise<number> {
  const insideAt = argv.indexOf("--inside");
  if (insideAt >= 0) {
    return inside(argv[insideAt + 1]);
  }
  if (argv.includes("--workstation")) {
    return workstation();
  }
  const topology = argv.includes("--ha")
    ? HA
    : argv.includes("--cilium")
      ? CILIUM
      : argv.includes("--no-upgrade")
        ? SMALL
        : UPGRADE;
  return argv.includes("--prepare") ? prepareLocal([topology]) : runLocal([topology]);
}

async function workstation(): Promise<number> {
  const results: PhaseResult[] = [];
  const checked = await preflight(realPreflightEnv);
  for (const note of checked.notes) {
    log(`preflight: ${note}`);
  }
  if (!checked.ok) {
    for (const problem of checked.problems) {
      console.error(`e2e cannot run; missing ${problem}`);
    }
    return 2;
  }

  const stackName = `e2e-${crypto.randomBytes(3).toString("hex")}`;
  const backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-e2e-backend-"));
  const stackConfigFile = path.join(PROJECT_DIR, `Pulumi.${stackName}.yaml`);
  log(`stack ${stackName}, state in ${backendDir}`);
  const passphrase = crypto.randomBytes(16).toString("hex");
  // Kept beside the state, so a run whose destroy failed can still be finished by hand.
  fs.writeFileSync(path.join(backendDir, "passphrase"), passphrase, { mode: 0o600 });
  const run: { stack?: Stack; outputs?: StackOutputs } = {};
  try {
    await runPhase(
      results,
      "create",
      async () => {
        const stack = await LocalWorkspace.createStack(
          { stackName, workDir: PROJECT_DIR },
          {
            envVars: {
              // The environment beats the project's `backend.url`, so nothing lands in ~/.pulumi.
              PULUMI_BACKEND_URL: `file://${backendDir}`,
              PULUMI_CONFIG_PASSPHRASE: passphrase,
            },
          },
        );
        if (checked.accelerator === "tcg") {
          await stack.setConfig("hardway:accelerator", { value: "tcg" });
        }
        run.stack = stack;
        return { ok: true, detail: `accelerator ${checked.accelerator}` };
      },
      log,
    );
    const stack = run.stack;
    const upOk =
      stack !== undefined &&
      (await runPhase(
        results,
        "up (cold)",
        async () => {
          const result = await stack.up({ onOutput: stream });
          run.outputs = parseStackOutputs(
            Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value])),
          );
          return { ok: result.summary.result === "succeeded", detail: result.summary.result };
        },
        log,
      ));
    const converged = run.outputs;
    if (upOk && converged !== undefined) {
      await runPhase(
        results,
        "smoke",
        async () => {
          const report = await smokeFromOutputs(converged, undefined, log);
          const failed = report.results.filter((r) => !r.passed).map((r) => r.name);
          return {
            ok: report.passed,
            detail: report.passed
              ? `${report.results.length} checks`
              : `failed: ${failed.join(", ")}`,
          };
        },
        log,
      );
      await runPhase(
        results,
        "up (again)",
        async () => noChangesVerdict((await stack.up({ onOutput: stream })).summary),
        log,
      );
    }
  } finally {
    const created = run.stack;
    let removed = created === undefined;
    if (created !== undefined) {
      const destroyed = await runPhase(
        results,
        "destroy",
        async () => {
          const result = await created.destroy({ onOutput: stream });
          return { ok: result.summary.result === "succeeded", detail: result.summary.result };
        },
        log,
      );
      removed =
        destroyed &&
        (await runPhase(
          results,
          "stack rm",
          async () => {
            await created.workspace.removeStack(stackName);
            return { ok: true, detail: stackName };
          },
          log,
        ));
    }
    await runPhase(
      results,
      "leak check",
      async () => {
        // Without outputs (a failed cold up) the nodes are unknown; the names derived from the
        // stack alone (bridge, NAT, taps, processes, blocks, state dir) are still checked.
        const leaks = findLeaks(await readHostState(), {
          stack: stackName,
          nodes: run.outputs?.nodes ?? {},
        });
        for (const leak of leaks) {
          log(`leftover ${leak.kind}: ${leak.what}`);
        }
        return {
          ok: leaks.length === 0,
          detail: leaks.length === 0 ? "the host is clean" : `${leaks.length} leftovers`,
        };
      },
      log,
    );
    if (removed) {
      fs.rmSync(stackConfigFile, { force: true });
      fs.rmSync(backendDir, { recursive: true, force: true });
    } else {
      const env = `PULUMI_BACKEND_URL=file://${backendDir} PULUMI_CONFIG_PASSPHRASE_FILE=${backendDir}/passphrase`;
      log(`the stack still exists; finish it by hand from ${PROJECT_DIR}:`);
      log(`  ${env} pulumi destroy --stack ${stackName}`);
      log(`  ${env} pulumi stack rm ${stackName}`);
    }
  }
  const summary = summarize(results);
  for (const line of summary.lines) {
    log(line);
  }
  return summary.ok ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`E2E FAIL: ${err.stack ?? err.message}`);
      process.exit(1);
    },
  );
}
