/**
 * The stdin bundle that assets/node/install-files.sh reads: one `FILE <path> <mode> <base64>`
 * line per file. Content (keys, kubeconfigs) only ever travels here, never on a command line.
 */
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

export interface RemoteFile {
  /** Absolute path on the node. */
  readonly path: string;
  /** Octal mode, e.g. "0644"; keys are "0600". */
  readonly mode: string;
  readonly content: string;
}

/** A RemoteFile whose content may still be an Output (a certificate, a secret key). */
export interface RemoteFileInput {
  readonly path: string;
  readonly mode: string;
  readonly content: pulumi.Input<string>;
}

export interface FileBundle {
  readonly stdin: string;
  /** sha256 of the bundle: the trigger that re-runs a step when any of its files changes. */
  readonly sha256: string;
}

const MODE = /^0?[0-7]{3}$/;

/** Problems with the paths and modes of a file list; empty when install-files.sh will accept it. */
export function fileListProblems(files: readonly Pick<RemoteFile, "path" | "mode">[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const segments = file.path.split("/");
    if (!file.path.startsWith("/") || file.path.endsWith("/") || /\s/.test(file.path)) {
      problems.push(`"${file.path}" is not an absolute file path without spaces`);
    } else if (segments.some((s) => s === "." || s === "..")) {
      problems.push(`"${file.path}" has . or .. segments`);
    }
    if (!MODE.test(file.mode)) {
      problems.push(`${file.path}: "${file.mode}" is not an octal mode such as 0644`);
    }
    if (seen.has(file.path)) {
      problems.push(`${file.path} is listed twice`);
    }
    seen.add(file.path);
  }
  return problems;
}

/** The bundle for a file list whose paths and modes fileListProblems accepted. */
export function fileBundle(files: readonly RemoteFile[]): FileBundle {
  const stdin = files
    .map((f) => `FILE ${f.path} ${f.mode} ${Buffer.from(f.content).toString("base64")}\n`)
    .join("");
  return { stdin, sha256: crypto.createHash("sha256").update(stdin).digest("hex") };
}

/** The inverse of fileBundle; tests use it to read what a step would install. */
export function parseFileBundle(stdin: string): RemoteFile[] {
  return stdin
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [kind, path, mode, data = ""] = line.split(" ");
      if (kind !== "FILE") {
        throw new Error(`not a FILE line: ${line.slice(0, 40)}`);
      }
      return { path, mode, content: Buffer.from(data, "base64").toString() };
    });
}

/**
 * The bundle of files whose content may be Outputs. The stdin is always a secret: some file of
 * almost every step is a key. Paths and modes are checked by the caller before this, so nothing
 * here can fail inside an apply.
 */
export function bundleOutput(files: readonly RemoteFileInput[]): {
  readonly stdin: pulumi.Output<string>;
  readonly sha256: pulumi.Output<string>;
} {
  const bundle = pulumi
    .all(files.map((f) => pulumi.output(f.content)))
    .apply((contents) =>
      fileBundle(files.map((f, i) => ({ path: f.path, mode: f.mode, content: contents[i] }))),
    );
  return { stdin: pulumi.secret(bundle.stdin), sha256: bundle.sha256 };
}
