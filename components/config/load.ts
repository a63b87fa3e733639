/**
 * The only place that reads Pulumi stack configuration. Every `hardway:*` key is read here,
 * decoded and validated once, together with what it asks of this host; components receive the
 * typed result.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  AcceleratorFacts,
  ResolvedAccelerator,
  acceleratorProblem,
  resolveAccelerator,
} from "../vm/qemu";
import { bridgeName } from "../host/layout";
import { versionWarnings } from "./kubernetesSupport";
import {
  HostEnvironment,
  configWarnings,
  missingFiles,
  otherStackProblems,
  probeHost,
} from "./host";
import {
  ConfigError,
  HardwayConfig,
  HostFacts,
  PROJECT,
  configSchema,
  hostArch,
  parseConfig,
} from "./schema";

/**
 * Stack config values reach the program as strings; structured ones (`versions`, `vm`, numbers)
 * are JSON text. Anything that is not JSON stays the string it was.
 */
export function decodeConfigValues(all: Readonly<Record<string, string>>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [fullKey, text] of Object.entries(all)) {
    if (!fullKey.startsWith(`${PROJECT}:`)) {
      continue;
    }
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // A plain string such as "arm64" or "192.168.234.0/24".
    }
    raw[fullKey.slice(PROJECT.length + 1)] = value;
  }
  return raw;
}

export function currentHost(): HostFacts {
  return { os: process.platform, cpu: process.arch };
}

export interface LoadedConfig {
  readonly config: HardwayConfig;
  /** The accelerator QEMU starts with (`auto` resolved). */
  readonly accelerator: ResolvedAccelerator;
  /** Choices that work but may hurt; the program logs them. */
  readonly warnings: readonly string[];
}

/**
 * Validates every stack config value (all namespaces, as `pulumi.runtime.allConfig()` has them)
 * against the schema and this host. Throws one ConfigError listing every problem: bad values,
 * files that are not there, an accelerator this host does not have.
 */
export function validateStackConfig(
  all: Readonly<Record<string, string>>,
  env: HostEnvironment,
  vmHost: AcceleratorFacts,
  stack: string,
  today: Date = new Date(),
): LoadedConfig {
  const raw = decodeConfigValues(all);
  let config: HardwayConfig | undefined;
  const problems: string[] = [];
  try {
    config = parseConfig(raw, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      throw err;
    }
    problems.push(...err.problems);
  }
  // The accelerator is checked even when other keys are bad, so all problems come at once.
  const accelerator = configSchema.shape.accelerator.safeParse(raw.accelerator);
  const archValue = configSchema.shape.arch.safeParse(raw.arch);
  const arch = archValue.success
    ? archValue.data === "auto"
      ? hostArch(env)
      : archValue.data
    : undefined;
  if (accelerator.success && arch !== undefined) {
    const problem = acceleratorProblem(accelerator.data, arch, vmHost);
    if (problem !== undefined) {
      problems.push(problem);
    }
  }
  if (config !== undefined) {
    problems.push(
      ...missingFiles(config, env),
      ...otherStackProblems(config, env, bridgeName(stack)),
    );
  }
  if (config === undefined || problems.length > 0) {
    throw new ConfigError(problems);
  }
  return {
    config,
    accelerator: resolveAccelerator(config.accelerator, config.arch, vmHost),
    warnings: [
      ...configWarnings(config, env, Object.keys(all), bridgeName(stack)),
      ...versionWarnings(config.versions, config, today),
    ],
  };
}

/** Reads and validates this stack's configuration, failing before any resource is registered. */
export function loadConfig(
  vmHost: AcceleratorFacts,
  env: HostEnvironment = probeHost(),
): LoadedConfig {
  try {
    const loaded = validateStackConfig(pulumi.runtime.allConfig(), env, vmHost, pulumi.getStack());
    for (const warning of loaded.warnings) {
      void pulumi.log.warn(warning);
    }
    return loaded;
  } catch (err) {
    if (err instanceof ConfigError) {
      // RunError prints the message without a stack trace: the message is the whole story.
      throw new pulumi.RunError(err.message);
    }
    throw err;
  }
}
