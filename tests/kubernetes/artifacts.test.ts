import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  Artifact,
  artifacts,
  artifactsFor,
  cachePath,
  defaultCacheDir,
  fetchArgs,
  mirroredUrl,
} from "../../components/kubernetes/artifacts";
import { config } from "./fixtures";

const FETCH = path.resolve(__dirname, "../../assets/artifacts/fetch.sh");
const names = (list: readonly Artifact[]) => list.map((a) => a.name);

describe("artifact list", () => {
  it.each(["amd64", "arm64"] as const)(
    "spells the configured arch (%s) in every URL and checksum URL",
    (arch) => {
      for (const runtime of ["containerd", "cri-o"] as const) {
        for (const a of artifacts(config({ arch, containerRuntime: runtime }))) {
          expect(a.url).toContain(arch);
          expect(a.arch).toBe(arch);
          if (a.checksum.kind === "file" && a.checksum.format === "bare") {
            expect(a.checksum.url).toContain(arch);
          } else if (a.checksum.kind === "file") {
            expect(a.checksum.entry).toContain(arch);
          }
          const other = arch === "amd64" ? "arm64" : "amd64";
          expect(a.url).not.toContain(other);
        }
      }
    },
  );

  it("with containerd: containerd, runc and crictl, no CRI-O", () => {
    const list = names(artifacts(config()));
    expect(list).toEqual(
      expect.arrayContaining([
        "containerd",
        "runc",
        "crictl",
        "etcd",
        "kubelet",
        "kube-proxy",
        "cni-plugins",
      ]),
    );
    expect(list).not.toContain("cri-o");
  });

  it("with CRI-O: the bundle (which carries runc and crictl) instead of containerd, runc and crictl", () => {
    const list = artifacts(config({ containerRuntime: "cri-o" }));
    expect(names(list)).toContain("cri-o");
    expect(names(list)).not.toEqual(expect.arrayContaining(["containerd"]));
    expect(names(list).filter((n) => ["containerd", "runc", "crictl"].includes(n))).toEqual([]);
    const crio = list.find((a) => a.name === "cri-o");
    expect(crio?.binaries.map((b) => b.installPath)).toEqual(
      expect.arrayContaining([
        "/usr/local/bin/crio",
        "/usr/libexec/crio/runc",
        "/usr/libexec/crio/conmon",
      ]),
    );
  });

  it("with Cilium: no kube-proxy, and only the loopback CNI plugin", () => {
    const list = artifacts(config({ cni: "cilium" }));
    expect(names(list)).not.toContain("kube-proxy");
    expect(list.find((a) => a.name === "cni-plugins")?.binaries.map((b) => b.member)).toEqual([
      "./loopback",
    ]);
  });

  it("gives each role what it runs and the gateway nothing", () => {
    const list = artifacts(config());
    expect(names(artifactsFor("control", list))).toEqual(
      expect.arrayContaining([
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
        "kubelet",
      ]),
    );
    expect(names(artifactsFor("worker", list))).not.toContain("etcd");
    expect(names(artifactsFor("worker", list))).not.toContain("kube-apiserver");
    expect(artifactsFor("gateway", list)).toEqual([]);
  });

  it("uses the published checksum files in their formats", () => {
    const byName = new Map(artifacts(config()).map((a) => [a.name, a]));
    expect(byName.get("kubelet")?.checksum).toEqual({
      kind: "file",
      url: "https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet.sha256",
      format: "bare",
      entry: "kubelet",
    });
    expect(byName.get("etcd")?.checksum).toEqual({
      kind: "file",
      url: "https://github.com/etcd-io/etcd/releases/download/v3.7.3/SHA256SUMS",
      format: "sha256sum",
      entry: "etcd-v3.7.3-linux-amd64.tar.gz",
    });
    expect(byName.get("runc")?.checksum).toMatchObject({
      format: "sha256sum",
      entry: "runc.amd64",
    });
  });

  it("caches by name, version and arch under XDG_CACHE_HOME or ~/.cache", () => {
    const etcd = artifacts(config()).find((a) => a.name === "etcd") as Artifact;
    expect(defaultCacheDir({}, "/home/u")).toBe("/home/u/.cache/hardway/artifacts");
    expect(defaultCacheDir({ XDG_CACHE_HOME: "/x" }, "/home/u")).toBe("/x/hardway/artifacts");
    expect(cachePath(etcd, "/c")).toBe("/c/etcd/3.7.3/amd64/etcd-v3.7.3-linux-amd64.tar.gz");
  });
});

describe("fetch.sh against a local HTTP server", () => {
  let server: ChildProcess | undefined;
  let dir = "";
  let base = "";
  const payload = crypto.randomBytes(4096);
  const digest = crypto.createHash("sha256").update(payload).digest("hex");

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-fetch-"));
    const served = path.join(dir, "served");
    fs.mkdirSync(path.join(served, "v1"), { recursive: true });
    fs.writeFileSync(path.join(served, "v1", "tool-linux-amd64.tar.gz"), payload);
    fs.writeFileSync(
      path.join(served, "v1", "SHA256SUMS"),
      `${"0".repeat(64)}  tool-linux-arm64.tar.gz\n${digest}  tool-linux-amd64.tar.gz\n`,
    );
    fs.writeFileSync(path.join(served, "v1", "tool-linux-amd64.tar.gz.sha256"), `${digest}\n`);
    fs.writeFileSync(path.join(served, "v1", "wrong.sha256"), `${"f".repeat(64)}\n`);
    server = spawn(
      "python3",
      [
        "-m",
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
        "--directory",
        served,
        "--protocol",
        "HTTP/1.1",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const port = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("http.server did not start")), 10000);
      server?.stdout?.on("data", (chunk: Buffer) => {
        const match = /port (\d+)/.exec(chunk.toString());
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    });
    base = `http://127.0.0.1:${port}/v1`;
  });

  afterAll(() => {
    server?.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function fetch(args: string[], verb = "create") {
    return spawnSync("bash", [FETCH, verb, ...args], {
      encoding: "utf8",
      env: { ...process.env, PATH: process.env.PATH },
    });
  }

  function fakeArtifact(checksum: Artifact["checksum"]): Artifact {
    return {
      name: "tool",
      version: "1.0.0",
      arch: "amd64",
      url: `${base}/tool-linux-amd64.tar.gz`,
      fileName: "tool-linux-amd64.tar.gz",
      checksum,
      archive: "tar.gz",
      binaries: [],
      roles: ["worker"],
    };
  }

  it("downloads once, verifies against a sha256sum file, and downloads nothing the second time", () => {
    const cache = path.join(dir, "cache-a");
    const artifact = fakeArtifact({
      kind: "file",
      url: `${base}/SHA256SUMS`,
      format: "sha256sum",
      entry: "tool-linux-amd64.tar.gz",
    });
    const first = fetch(fetchArgs(artifact, cache, "stack-a"));
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout.trim()).toBe(cachePath(artifact, cache));
    expect(fs.readFileSync(first.stdout.trim())).toEqual(payload);
    // With the server gone, a second run can only succeed from the cache.
    const offline = {
      ...artifact,
      url: "http://127.0.0.1:9/unreachable",
      fileName: artifact.fileName,
    };
    const second = fetch(["--url", offline.url, ...fetchArgs(artifact, cache, "stack-a").slice(2)]);
    expect(second.status).toBe(0);
    expect(second.stdout.trim()).toBe(cachePath(artifact, cache));
  });

  it("accepts a bare-hash checksum file and a pinned digest", () => {
    const bare = fakeArtifact({
      kind: "file",
      url: `${base}/tool-linux-amd64.tar.gz.sha256`,
      format: "bare",
      entry: "x",
    });
    expect(fetch(fetchArgs(bare, path.join(dir, "cache-b"), "stack-a")).status).toBe(0);
    const pinned = fakeArtifact({ kind: "pinned", sha256: digest });
    expect(fetch(fetchArgs(pinned, path.join(dir, "cache-c"), "stack-a")).status).toBe(0);
  });

  it("fails with a clear message and keeps nothing when the digest does not match", () => {
    const cache = path.join(dir, "cache-d");
    const wrong = fakeArtifact({
      kind: "file",
      url: `${base}/wrong.sha256`,
      format: "bare",
      entry: "x",
    });
    const result = fetch(fetchArgs(wrong, cache, "stack-a"));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(
      `checksum mismatch for ${wrong.url}: expected ${"f".repeat(64)}`,
    );
    expect(result.stderr).toContain(`got ${digest}`);
    expect(fs.existsSync(cachePath(wrong, cache))).toBe(false);
  });

  it("says which entry is missing from a checksum file", () => {
    const missing = fakeArtifact({
      kind: "file",
      url: `${base}/SHA256SUMS`,
      format: "sha256sum",
      entry: "nope.tar.gz",
    });
    const result = fetch(fetchArgs(missing, path.join(dir, "cache-e"), "stack-a"));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("no sha256 for 'nope.tar.gz'");
  });
});

describe("fetch.sh holds a cached file for each stack", () => {
  let dir = "";
  const payload = crypto.randomBytes(1024);
  const digest = crypto.createHash("sha256").update(payload).digest("hex");
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-hold-"));
    fs.writeFileSync(path.join(dir, "tool"), payload);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (verb: string, holder: string) =>
    spawnSync(
      "bash",
      [
        FETCH,
        verb,
        "--url",
        `file://${dir}/tool`,
        "--dest",
        `${dir}/cache/tool`,
        "--holder",
        holder,
        "--sha256",
        digest,
      ],
      { encoding: "utf8" },
    );

  it("keeps the file while another stack holds it, and status tells each stack apart", () => {
    expect(run("create", "hardway-a").status).toBe(0);
    expect(run("create", "hardway-b").status).toBe(0);
    expect(run("status", "hardway-a").status).toBe(0);
    expect(run("delete", "hardway-a").status).toBe(0);
    expect(run("status", "hardway-a").status).toBe(1);
    // Stack b's VMs still get their copy from here.
    expect(run("status", "hardway-b").status).toBe(0);
    expect(fs.readFileSync(`${dir}/cache/tool`)).toEqual(payload);
    expect(run("delete", "hardway-b").status).toBe(0);
    expect(fs.existsSync(`${dir}/cache/tool`)).toBe(false);
    expect(run("delete", "hardway-b").status).toBe(0);
  });

  it("says a file is gone once someone cleared the cache, and fetches it again", () => {
    expect(run("create", "hardway-c").status).toBe(0);
    fs.rmSync(`${dir}/cache`, { recursive: true, force: true });
    expect(run("status", "hardway-c").status).toBe(1);
    expect(run("create", "hardway-c").status).toBe(0);
    expect(run("status", "hardway-c").status).toBe(0);
  });
});

describe("a release mirror", () => {
  it("maps https://<host>/<path> under a base URL or an absolute directory", () => {
    const url = "https://dl.k8s.io/release/v1.36.5/bin/linux/amd64/kubelet";
    expect(mirroredUrl(url, "")).toBe(url);
    expect(mirroredUrl(url, "https://mirror.example/releases/")).toBe(
      "https://mirror.example/releases/dl.k8s.io/release/v1.36.5/bin/linux/amd64/kubelet",
    );
    expect(mirroredUrl(url, "/srv/mirror")).toBe(
      "file:///srv/mirror/dl.k8s.io/release/v1.36.5/bin/linux/amd64/kubelet",
    );
  });

  it("moves every release file and its checksum file, and keeps the cache layout", () => {
    const upstream = artifacts(config());
    const mirrored = artifacts({ ...config(), releaseMirror: "/srv/m" });
    for (const [i, a] of mirrored.entries()) {
      expect(a.url).toBe(`file:///srv/m/${upstream[i].url.slice("https://".length)}`);
      if (a.checksum.kind === "file" && upstream[i].checksum.kind === "file") {
        expect(a.checksum.url.startsWith("file:///srv/m/")).toBe(true);
      }
      expect(cachePath(a, "/c")).toBe(cachePath(upstream[i], "/c"));
    }
  });
});
