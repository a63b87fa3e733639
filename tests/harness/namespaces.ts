import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

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

/** A sandbox on disk and as a network namespace. */
export interface Sandbox extends SandboxPaths {
  /** The temp directory that holds the sandbox's files. */
  readonly work: string;
  /** Whether /var/lib/hardway (the mount point) was made for the sandbox. */
  readonly createdStateRoot: boolean;
}

/**
 * Makes a sandbox: a temp directory `hardway-<name>-XXXXXX` with an empty state root, NFS table
 * and an exports file holding `exportsText`, the /var/lib/hardway mount point if the host has
 * none, and a network namespace `hw<name>-<random hex>` with its loopback up.
 */
export function makeSandbox(name: string, exportsText = ""): Sandbox {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `hardway-${name}-`));
  const sandbox: Sandbox = {
    namespace: `hw${name}-${crypto.randomBytes(3).toString("hex")}`,
    work,
    stateRoot: path.join(work, "var-lib-hardway"),
    exportsFile: path.join(work, "exports"),
    nfsLib: path.join(work, "var-lib-nfs"),
    createdStateRoot: !fs.existsSync("/var/lib/hardway"),
  };
  fs.mkdirSync(sandbox.stateRoot);
  fs.mkdirSync(sandbox.nfsLib);
  fs.writeFileSync(sandbox.exportsFile, exportsText);
  if (sandbox.createdStateRoot) {
    fs.mkdirSync("/var/lib/hardway");
  }
  spawnSync("ip", ["netns", "add", sandbox.namespace]);
  spawnSync("ip", ["-n", sandbox.namespace, "link", "set", "lo", "up"]);
  return sandbox;
}

/**
 * Kills whatever still runs in the sandbox's network namespace (VMs, dnsmasq), removes the
 * namespace and the sandbox's files, and the /var/lib/hardway mount point if it was made for it.
 */
export function removeSandbox(
  sandbox: Pick<Sandbox, "namespace" | "work" | "createdStateRoot">,
): void {
  const pids =
    spawnSync("ip", ["netns", "pids", sandbox.namespace], { encoding: "utf8" }).stdout ?? "";
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    spawnSync("kill", ["-9", pid]);
  }
  spawnSync("ip", ["netns", "del", sandbox.namespace]);
  if (sandbox.createdStateRoot) {
    fs.rmSync("/var/lib/hardway", { recursive: true, force: true });
  }
  fs.rmSync(sandbox.work, { recursive: true, force: true });
}

/** Kills whatever still runs in a network namespace (re-parented by `ip netns exec`), then deletes it. */
export function removeNetworkNamespace(ns: string): void {
  const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout ?? "";
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  spawnSync("ip", ["netns", "del", ns]);
}
