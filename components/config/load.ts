/**
 * The only place that reads Pulumi stack configuration. Every `hardway:*` key is read here,
 * decoded and validated once; components receive the typed result.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, HardwayConfig, HostFacts, PROJECT, parseConfig } from "./schema";

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

/** Reads and validates this stack's configuration, failing before any resource is registered. */
export function loadConfig(host: HostFacts = currentHost()): HardwayConfig {
  try {
    return parseConfig(decodeConfigValues(pulumi.runtime.allConfig()), host);
  } catch (err) {
    if (err instanceof ConfigError) {
      // RunError prints the message without a stack trace: the message is the whole story.
      throw new pulumi.RunError(err.message);
    }
    throw err;
  }
}
