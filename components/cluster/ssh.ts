/**
 * Running commands on a VM over OpenSSH, from the host, for NodeStep's provider. Each session
 * writes the private key and a known-hosts file holding exactly the VM's host key (its own,
 * made by the PKI and installed by cloud-init) into a private temporary directory, so the host
 * key is checked strictly and nothing is added to the user's ~/.ssh. One master connection
 * carries every command of a session.
 *
 * This code also runs inside the dynamic-provider host, serialised into the Pulumi state:
 * modules are loaded with `require` when called, never captured from imports.
 */
import type * as ChildProcess from "node:child_process";
import type * as Crypto from "node:crypto";
import type * as Fs from "node:fs";
import type * as Os from "node:os";
import type * as Path from "node:path";
import { shellCommand } from "./shell";

export interface SshTarget {
  readonly host: string;
  readonly user: string;
  /** OpenSSH private key text. */
  readonly privateKey: string;
  /** The VM's host key, `ssh-ed25519 AAAA…`. */
  readonly hostKey: string;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface SshSession {
  /** Runs a command line on the VM; stdin is a string or a local file to stream. */
  run(
    command: string,
    input?: { text: string } | { file: string },
    timeoutSeconds?: number,
  ): Promise<RunResult>;
  /** Like run, but fails with the command's output unless it exits 0. */
  check(
    command: string,
    input?: { text: string } | { file: string },
    timeoutSeconds?: number,
  ): Promise<string>;
}

/** ssh exits 255 when the connection itself failed, as opposed to the remote command. */
export const SSH_CONNECTION_FAILED = 255;

function modules() {
  /* eslint-disable @typescript-eslint/no-require-imports -- see the file comment */
  return {
    childProcess: require("node:child_process") as typeof ChildProcess,
    crypto: require("node:crypto") as typeof Crypto,
    fs: require("node:fs") as typeof Fs,
    os: require("node:os") as typeof Os,
    path: require("node:path") as typeof Path,
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** The OpenSSH options every hardway session uses; pure, for tests. */
export function sshOptions(dir: string): string[] {
  return [
    "-i",
    `${dir}/key`,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    `UserKnownHostsFile=${dir}/known_hosts`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=8",
    "-o",
    "ControlMaster=auto",
    "-o",
    `ControlPath=${dir}/master`,
    "-o",
    "ControlPersist=120",
    "-o",
    "LogLevel=ERROR",
    // AES-GCM first: release files (kube-apiserver is 105 MB) go over these sessions, and the
    // CPUs both sides run on have AES instructions, which QEMU's TCG also executes natively for
    // its guests. Measured to a TCG guest: 105 MB in 20 s with aes128-gcm, 35 s with OpenSSH's
    // default chacha20-poly1305. `^` keeps the rest of OpenSSH's default list after it.
    "-o",
    "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com",
  ];
}

/** The known_hosts line that pins a VM's host key. */
export function knownHostsLine(host: string, hostKey: string): string {
  const [type, key] = hostKey.trim().split(/\s+/);
  if (!type || !key) {
    throw new Error(`"${hostKey}" is not an OpenSSH public key line`);
  }
  return `${host} ${type} ${key}\n`;
}

/** Spawns argv, feeding it stdin; resolves with its exit and output. */
function spawnWith(
  argv: readonly string[],
  input: { text: string } | { file: string } | undefined,
  timeoutSeconds: number,
): Promise<RunResult> {
  const { childProcess, fs } = modules();
  return new Promise((resolve, reject) => {
    const child = childProcess.spawn(argv[0], argv.slice(1), {
      stdio: ["pipe", "pipe", "pipe"],
      timeout: timeoutSeconds * 1000,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.on("error", () => undefined);
    if (input !== undefined && "file" in input) {
      fs.createReadStream(input.file).on("error", reject).pipe(child.stdin);
    } else {
      child.stdin.end(input?.text ?? "");
    }
  });
}

function describe(command: string, result: RunResult): string {
  const exit = result.code === null ? "was killed (timeout)" : `exited ${result.code}`;
  const output = `${result.stderr}${result.stdout}`.trim().split("\n").slice(-40).join("\n");
  return `\`${command}\` ${exit}${output ? `:\n${output}` : ""}`;
}

/**
 * Opens a session to the target, runs `body`, and always closes the master connection and
 * deletes the key. `attempts` tries to connect allow for a VM whose sshd is still starting.
 */
export async function withSsh<T>(
  target: SshTarget,
  body: (session: SshSession) => Promise<T>,
  options: { readonly attempts?: number; readonly retrySeconds?: number } = {},
): Promise<T> {
  const { fs, os, path } = modules();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-ssh-"));
  const base = ["ssh", ...sshOptions(dir), `${target.user}@${target.host}`];
  try {
    fs.writeFileSync(
      path.join(dir, "key"),
      target.privateKey.endsWith("\n") ? target.privateKey : `${target.privateKey}\n`,
      {
        mode: 0o600,
      },
    );
    fs.writeFileSync(path.join(dir, "known_hosts"), knownHostsLine(target.host, target.hostKey));
    const attempts = options.attempts ?? 1;
    for (let attempt = 1; ; attempt++) {
      const probe = await spawnWith([...base, "true"], undefined, 60);
      if (probe.code === 0) {
        break;
      }
      if (probe.code !== SSH_CONNECTION_FAILED || attempt >= attempts) {
        const error = new Error(
          `cannot reach ${target.user}@${target.host} over SSH: ${describe("ssh true", probe)}`,
        );
        (error as Error & { unreachable?: boolean }).unreachable =
          probe.code === SSH_CONNECTION_FAILED;
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, (options.retrySeconds ?? 5) * 1000));
    }
    const session: SshSession = {
      run: (command, input, timeoutSeconds = 1800) =>
        spawnWith([...base, command], input, timeoutSeconds),
      async check(command, input, timeoutSeconds) {
        const result = await session.run(command, input, timeoutSeconds);
        if (result.code !== 0) {
          throw new Error(`on ${target.host}: ${describe(command, result)}`);
        }
        return result.stdout;
      },
    };
    return await body(session);
  } finally {
    await spawnWith(
      ["ssh", ...sshOptions(dir), "-O", "exit", `${target.user}@${target.host}`],
      undefined,
      10,
    ).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Puts a file on the VM atomically: written beside its path under a name of its own (several
 * steps may copy the same scripts to one VM at once), then renamed over it.
 */
export async function upload(
  session: SshSession,
  remotePath: string,
  input: { text: string } | { file: string },
  mode = "0644",
): Promise<void> {
  const { crypto } = modules();
  const dir = remotePath.slice(0, remotePath.lastIndexOf("/")) || "/";
  const part = `${remotePath}.part-${crypto.randomBytes(6).toString("hex")}`;
  await session.check(
    [
      shellCommand(["mkdir", "-p", "--", dir]),
      `cat > ${shellCommand([part])}`,
      shellCommand(["chmod", mode, "--", part]),
      shellCommand(["mv", "-f", "--", part, remotePath]),
    ].join(" && "),
    input,
  );
}

/** sha256 of each path that exists on the VM, by path. */
export async function remoteDigests(
  session: SshSession,
  paths: readonly string[],
): Promise<Map<string, string>> {
  if (paths.length === 0) {
    return new Map();
  }
  const result = await session.run(`${shellCommand(["sha256sum", "--", ...paths])} 2>/dev/null`);
  const digests = new Map<string, string>();
  for (const line of result.stdout.split("\n")) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (match) {
      digests.set(match[2], match[1]);
    }
  }
  return digests;
}
