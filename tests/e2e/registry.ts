/**
 * The run's image registry: distribution (the reference OCI registry, built from its module) on
 * plain HTTP inside the run's network namespace, filled with the services' images by crane. The
 * nodes reach it on the host's address of the VM network, as the mirror of every registry the
 * images name (hardway:registryMirrors); its access log then shows which images they pulled, and
 * through which registry's name (containerd adds `?ns=<registry>` to a mirror's requests).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { waitFor } from "../smoke/checks";
import { POLLING } from "./cluster";
import { ImageArchive, splitRef } from "./serviceArtifacts";

/** The port the registry listens on, on every address of the namespace. */
export const REGISTRY_PORT = 5000;

/** The registry's configuration: filesystem storage, HTTP, an access log line per request. Pure. */
export function registryConfig(storageDir: string, port = REGISTRY_PORT): string {
  return stringify({
    version: 0.1,
    log: { level: "info", formatter: "text", accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: storageDir } },
    http: { addr: `:${port}` },
  });
}

/** One request for a manifest, from the registry's access log. */
export interface ManifestRequest {
  readonly client: string;
  readonly method: string;
  readonly repository: string;
  /** A tag or a digest. */
  readonly reference: string;
  /** The registry the client asked for, when it came as a mirror (containerd's `ns`). */
  readonly ns?: string;
  readonly status: number;
}

/**
 * The manifest requests in an access log (Apache combined format, as distribution writes it).
 * Pure.
 */
export function manifestRequests(accessLog: string): ManifestRequest[] {
  const requests: ManifestRequest[] = [];
  const line =
    /^(\S+) \S+ \S+ \[[^\]]*\] "([A-Z]+) \/v2\/(\S+)\/manifests\/([^?\s]+)(?:\?(\S*))? HTTP\/[\d.]+" (\d{3})/;
  for (const text of accessLog.split("\n")) {
    const m = line.exec(text);
    if (m === null) {
      continue;
    }
    const ns = new URLSearchParams(m[5] ?? "").get("ns") ?? undefined;
    requests.push({
      client: m[1],
      method: m[2],
      repository: m[3],
      reference: m[4],
      ...(ns === undefined ? {} : { ns }),
      status: Number(m[6]),
    });
  }
  return requests;
}

/**
 * Which images no node pulled through the mirror: an image counts once a client other than
 * loopback (crane pushing) got its manifest by tag with `ns` naming the image's registry. Pure.
 */
export function imagesNotPulled(
  requests: readonly ManifestRequest[],
  refs: readonly string[],
): string[] {
  return refs.filter((ref) => {
    const { registry, repository, tag } = splitRef(ref);
    return !requests.some(
      (r) =>
        r.client !== "127.0.0.1" &&
        (r.method === "GET" || r.method === "HEAD") &&
        r.status === 200 &&
        r.repository === repository &&
        r.reference === tag &&
        r.ns === registry,
    );
  });
}

export interface RunningRegistry {
  /** The registry's address for clients in the namespace, e.g. 127.0.0.1:5000. */
  readonly local: string;
  readonly accessLog: () => string;
  readonly stop: () => void;
}

/** Starts the registry in `dir` (its storage, config and log) and waits until it answers. */
export async function startRegistry(binary: string, dir: string): Promise<RunningRegistry> {
  fs.mkdirSync(path.join(dir, "storage"), { recursive: true });
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(config, registryConfig(path.join(dir, "storage")));
  const logFile = path.join(dir, "registry.log");
  const out = fs.openSync(logFile, "a");
  const child = spawn(binary, ["serve", config], {
    stdio: ["ignore", out, out],
    // It would export traces to an OpenTelemetry collector on localhost, every 5 s, failing.
    env: { ...process.env, OTEL_TRACES_EXPORTER: "none" },
  });
  fs.closeSync(out);
  const local = `127.0.0.1:${REGISTRY_PORT}`;
  const stop = () => {
    child.kill("SIGTERM");
  };
  try {
    await waitFor(POLLING, `the registry answering on ${local}`, 60_000, async () => {
      if (child.exitCode !== null) {
        throw new Error(
          `the registry exited ${child.exitCode}:\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`,
        );
      }
      const answer = await fetch(`http://${local}/v2/`).catch((err: Error) => err);
      return answer instanceof Error || !answer.ok
        ? {
            done: false,
            state: answer instanceof Error ? answer.message : `HTTP ${answer.status}`,
          }
        : { done: true, value: undefined };
    });
  } catch (err) {
    stop();
    throw err;
  }
  return { local, accessLog: () => fs.readFileSync(logFile, "utf8"), stop };
}

/**
 * Pushes each archive (an OCI image layout as a tar) to the registry under its ref's repository
 * and tag, with crane: `crane push` reads a directory as an OCI layout.
 */
export function pushImages(
  crane: string,
  registry: RunningRegistry,
  images: readonly ImageArchive[],
  work: string,
): void {
  for (const image of images) {
    const { repository, tag } = splitRef(image.ref);
    const layout = fs.mkdtempSync(path.join(work, "layout-"));
    try {
      const untar = spawnSync("tar", ["-xf", image.archive, "-C", layout], { encoding: "utf8" });
      if (untar.status !== 0) {
        throw new Error(`cannot unpack ${image.archive}: ${untar.stderr}`);
      }
      const pushed = spawnSync(
        crane,
        ["push", "--insecure", layout, `${registry.local}/${repository}:${tag}`],
        { encoding: "utf8", timeout: 600_000 },
      );
      if (pushed.status !== 0) {
        throw new Error(`crane push ${image.ref} failed: ${pushed.stderr}`);
      }
    } finally {
      fs.rmSync(layout, { recursive: true, force: true });
    }
  }
}
