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

/** The private copies a sandboxed run binds over the host's own paths. */
export interface SandboxPaths {
  /** The network namespace (`ip netns add`) the run lives in. */
  readonly namespace: string;
  /** Bound over /var/lib/hardway. */
  readonly stateRoot: string;
  /** Bound over /etc/exports. */
  readonly exportsFile: string;
  /** Bound over /var/lib/nfs (exportfs's table). */
  readonly nfsLib: string;
}

/**
 * The argv prefix that runs a command in the network namespace and in a private mount namespace
 * where /var/lib/hardway, /etc/exports and /var/lib/nfs are the sandbox's own; `label` names the
 * shell in `ps`.
 */
export function inSandbox(paths: SandboxPaths, label: string): string[] {
  return [
    "ip",
    "netns",
    "exec",
    paths.namespace,
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    [
      `mount --bind "${paths.stateRoot}" /var/lib/hardway`,
      `mount --bind "${paths.exportsFile}" /etc/exports`,
      `mount --bind "${paths.nfsLib}" /var/lib/nfs`,
      'exec "$@"',
    ].join(" && "),
    label,
  ];
}
