/**
 * What the e2e run needs before it spends half an hour: the Pulumi CLI, QEMU with hardware
 * acceleration (or an explicit opt-in to slow TCG), the internet for the cloud image and
 * releases, and root through `sudo -n`. Pure over PreflightEnv, so every verdict is tested with
 * fakes; realPreflightEnv is the one real implementation.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import { defaultImageUrl } from "../../components/config/defaults";
import { hostArch } from "../../components/config/schema";
import { qemuBinary } from "../../components/vm/qemu";
import { CommandResult } from "../smoke/clusterApi";
import { runCommand } from "../smoke/run";

export interface PreflightEnv {
  readonly platform: NodeJS.Platform;
  /** `process.arch`: x64 or arm64. */
  readonly cpu: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly isRoot: boolean;
  /** Rejects when the program is not installed. */
  run(program: string, args: readonly string[]): Promise<CommandResult>;
  canOpenReadWrite(file: string): boolean;
  /** The HTTP status of a HEAD request; rejects on a network error or after `timeoutMs`. */
  head(url: string, timeoutMs: number): Promise<number>;
}

export interface PreflightResult {
  readonly ok: boolean;
  /** One line per missing prerequisite, each naming it and what to do. */
  readonly problems: readonly string[];
  /** What was found, for the log. */
  readonly notes: readonly string[];
  /** What the throwaway stack's hardway:accelerator must be. */
  readonly accelerator: "auto" | "tcg";
}

export const ACCELERATOR_OVERRIDE = "HARDWAY_E2E_ACCELERATOR";
const HEAD_TIMEOUT_MS = 10_000;

async function tryRun(
  env: PreflightEnv,
  program: string,
  args: readonly string[],
): Promise<CommandResult> {
  try {
    return await env.run(program, args);
  } catch (err) {
    return { code: 127, stdout: "", stderr: (err as Error).message };
  }
}

function firstLine(result: CommandResult): string {
  return (result.stdout.trim() || result.stderr.trim()).split("\n")[0] ?? "";
}

/** Tools print progress first and the reason last ("Downloading pulumi…", "pulumi: fetch failed"). */
function reason(result: CommandResult): string {
  const lines = `${result.stdout}\n${result.stderr}`.split("\n").filter((l) => l.trim() !== "");
  return lines[lines.length - 1]?.trim() ?? `exit ${result.code}`;
}

export async function preflight(env: PreflightEnv): Promise<PreflightResult> {
  const problems: string[] = [];
  const notes: string[] = [];

  const pulumi = await tryRun(env, "pulumi", ["version"]);
  if (pulumi.code === 0) {
    notes.push(`Pulumi CLI ${firstLine(pulumi)}`);
  } else {
    problems.push(
      `the Pulumi CLI: \`pulumi version\` failed (${reason(pulumi)}). ` +
        "Install it from https://www.pulumi.com/docs/install/ and put it on PATH; the npm " +
        "`pulumi` package only downloads the CLI on first use, which fails offline.",
    );
  }

  const arch = hostArch({ os: env.platform, cpu: env.cpu });
  let accelerator: PreflightResult["accelerator"] = "auto";
  if (arch === undefined) {
    problems.push(`a hypervisor: hardway runs guests on x64 or arm64 hosts, not ${env.cpu}`);
  } else {
    const binary = qemuBinary(arch);
    const qemu = await tryRun(env, binary, ["--version"]);
    if (qemu.code === 0) {
      notes.push(firstLine(qemu));
    } else {
      problems.push(
        `a hypervisor: ${binary} is missing (${reason(qemu)}); install QEMU ` +
          (env.platform === "darwin"
            ? "(brew install qemu)"
            : "(e.g. apt-get install qemu-system)"),
      );
    }
    const hardware = await hardwareAcceleration(env);
    const override = env.env[ACCELERATOR_OVERRIDE];
    if (hardware.usable) {
      notes.push(hardware.description);
    } else if (override === "tcg") {
      accelerator = "tcg";
      notes.push(`${hardware.description}; ${ACCELERATOR_OVERRIDE}=tcg, so emulating (slow)`);
    } else {
      problems.push(
        `a hypervisor: ${hardware.description}. Fix that, or set ${ACCELERATOR_OVERRIDE}=tcg to ` +
          "run under emulation, many times slower",
      );
    }
  }

  const imageUrl = arch === undefined ? defaultImageUrl("amd64") : defaultImageUrl(arch);
  try {
    const status = await env.head(imageUrl, HEAD_TIMEOUT_MS);
    if (status >= 400) {
      problems.push(`the internet: HEAD ${imageUrl} answered HTTP ${status}`);
    } else {
      notes.push(`${new URL(imageUrl).host} reachable (HTTP ${status})`);
    }
  } catch (err) {
    problems.push(
      `the internet: HEAD ${imageUrl} failed (${(err as Error).message}); up downloads the ` +
        "cloud image and the Kubernetes releases",
    );
  }

  if (env.isRoot) {
    notes.push("running as root");
  } else {
    const sudo = await tryRun(env, "sudo", ["-n", "true"]);
    if (sudo.code === 0) {
      notes.push("sudo -n works");
    } else {
      problems.push(
        `root: \`sudo -n true\` failed (${reason(sudo)}); the host network, ` +
          "VMs and NFS export need root. Run `sudo -v` first, or allow passwordless sudo",
      );
    }
  }

  return { ok: problems.length === 0, problems, notes, accelerator };
}

async function hardwareAcceleration(
  env: PreflightEnv,
): Promise<{ usable: boolean; description: string }> {
  if (env.platform === "linux") {
    return env.canOpenReadWrite("/dev/kvm")
      ? { usable: true, description: "/dev/kvm usable" }
      : {
          usable: false,
          description:
            "/dev/kvm is missing or not read-write for this user (load kvm_intel/kvm_amd, join the kvm group)",
        };
  }
  if (env.platform === "darwin") {
    const hvf = await tryRun(env, "sysctl", ["-n", "kern.hv_support"]);
    return hvf.code === 0 && hvf.stdout.trim() === "1"
      ? { usable: true, description: "Hypervisor.framework available" }
      : { usable: false, description: "Hypervisor.framework is not available (kern.hv_support)" };
  }
  return { usable: false, description: `no hardware accelerator is known on ${env.platform}` };
}

export const realPreflightEnv: PreflightEnv = {
  platform: process.platform,
  cpu: process.arch,
  env: process.env,
  isRoot: process.getuid?.() === 0,
  run: (program, args) => runCommand(program, args, { timeoutMs: 60_000 }),
  canOpenReadWrite(file) {
    try {
      fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
  head(url, timeoutMs) {
    return new Promise((resolve, reject) => {
      const request = https.request(url, { method: "HEAD", timeout: timeoutMs }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs}ms`)));
      request.on("error", reject);
      request.end();
    });
  },
};
