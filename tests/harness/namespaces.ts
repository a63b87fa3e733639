import { spawnSync } from "node:child_process";

/** Why a test that needs a private mount namespace cannot run here, or undefined when it can. */
export function mountNamespaceSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "needs root for a mount namespace";
  }
  return spawnSync("unshare", ["--mount", "true"]).status === 0
    ? undefined
    : "unshare --mount does not work here";
}
