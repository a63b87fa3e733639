import { execFileSync, spawnSync } from "node:child_process";
import { HardwayConfig, parseConfig } from "../../components/config/schema";
import { addressPlan, AddressPlan } from "../../components/network/addressPlan";

export function config(raw: Record<string, unknown> = {}): HardwayConfig {
  return parseConfig({ arch: "amd64", ...raw }, { os: "linux", cpu: "x64" });
}

export function plan(raw: Record<string, unknown> = {}): AddressPlan {
  return addressPlan(config(raw));
}

/** The path of a command on this machine, or undefined when it is not installed. */
export function which(command: string): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v "$1"`, "sh", command], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

export function run(command: string, args: readonly string[], input?: string): string {
  return execFileSync(command, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** TOML parsed by Python's standard tomllib, an independent TOML 1.0 reader. */
export function parseToml(text: string): Record<string, unknown> {
  return JSON.parse(
    run(
      "python3",
      ["-c", "import sys, json, tomllib; print(json.dumps(tomllib.loads(sys.stdin.read())))"],
      text,
    ),
  ) as Record<string, unknown>;
}
