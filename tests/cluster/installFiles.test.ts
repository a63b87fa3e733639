import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  fileBundle,
  fileListProblems,
  parseFileBundle,
} from "../../components/cluster/remoteFiles";

const NODE_ASSETS = path.resolve(__dirname, "../../assets/node");
const INSTALL_FILES = path.join(NODE_ASSETS, "install-files.sh");

function run(script: string, args: string[], stdin = "") {
  return spawnSync("bash", [script, ...args], { input: stdin, encoding: "utf8", timeout: 20_000 });
}

const PEM = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";

describe("fileBundle", () => {
  it("round-trips through parseFileBundle, including empty and multi-line content", () => {
    const files = [
      { path: "/etc/kubernetes/pki/ca.key", mode: "0600", content: PEM },
      { path: "/etc/empty", mode: "0644", content: "" },
    ];
    const bundle = fileBundle(files);
    expect(parseFileBundle(bundle.stdin)).toEqual(files);
    expect(bundle.stdin).not.toContain("PRIVATE KEY");
    expect(bundle.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("hashes differently when one byte of one file changes", () => {
    const a = fileBundle([{ path: "/a", mode: "0644", content: "--v=2" }]);
    const b = fileBundle([{ path: "/a", mode: "0644", content: "--v=3" }]);
    expect(a.sha256).not.toBe(b.sha256);
  });

  it("names relative paths, dot segments, bad modes and duplicates", () => {
    expect(
      fileListProblems([
        { path: "etc/x", mode: "0644" },
        { path: "/etc/../x", mode: "0644" },
        { path: "/etc/y", mode: "rw" },
        { path: "/etc/z", mode: "0644" },
        { path: "/etc/z", mode: "0600" },
      ]),
    ).toEqual([
      '"etc/x" is not an absolute file path without spaces',
      '"/etc/../x" has . or .. segments',
      '/etc/y: "rw" is not an octal mode such as 0644',
      "/etc/z is listed twice",
    ]);
  });
});

describe("install-files.sh under a fake root", () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "install-files-"));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const write = (step: string, files: { path: string; mode: string; content: string }[]) =>
    run(INSTALL_FILES, ["write", "--step", step, "--root", root], fileBundle(files).stdin);
  const at = (p: string) => path.join(root, p);
  const mode = (p: string) => (fs.statSync(at(p)).mode & 0o777).toString(8);

  it("writes each file with its mode, and a second run changes nothing else", () => {
    const files = [
      { path: "/etc/kubernetes/pki/ca.key", mode: "0600", content: PEM },
      { path: "/etc/systemd/system/etcd.service", mode: "0644", content: "[Unit]\n" },
    ];
    for (let i = 0; i < 2; i++) {
      const result = write("etcd", files);
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
    }
    expect(fs.readFileSync(at("/etc/kubernetes/pki/ca.key"), "utf8")).toBe(PEM);
    expect(mode("/etc/kubernetes/pki/ca.key")).toBe("600");
    expect(mode("/etc/systemd/system/etcd.service")).toBe("644");
    expect(fs.readdirSync(at("/etc/kubernetes/pki"))).toEqual(["ca.key"]);
    expect(fs.readFileSync(at("/var/lib/hardway/files/etcd.list"), "utf8")).toBe(
      "/etc/kubernetes/pki/ca.key\n/etc/systemd/system/etcd.service\n",
    );
  });

  it("removes files a new bundle no longer lists, but keeps those another step owns", () => {
    write("kube-apiserver", [
      { path: "/pki/ca.crt", mode: "0644", content: "ca" },
      { path: "/pki/apiserver.crt", mode: "0644", content: "a" },
    ]);
    write("kubelet", [{ path: "/pki/ca.crt", mode: "0644", content: "ca" }]);
    expect(
      write("kube-apiserver", [{ path: "/pki/new.crt", mode: "0644", content: "n" }]).status,
    ).toBe(0);
    expect(fs.readdirSync(at("/pki")).sort()).toEqual(["ca.crt", "new.crt"]);

    expect(run(INSTALL_FILES, ["remove", "--step", "kubelet", "--root", root]).status).toBe(0);
    expect(fs.readdirSync(at("/pki"))).toEqual(["new.crt"]);
    expect(run(INSTALL_FILES, ["remove", "--step", "kube-apiserver", "--root", root]).status).toBe(
      0,
    );
    expect(fs.readdirSync(at("/pki"))).toEqual([]);
    // Removing twice is as good as once.
    expect(run(INSTALL_FILES, ["remove", "--step", "kube-apiserver", "--root", root]).status).toBe(
      0,
    );
  });

  it("rejects a malformed bundle before writing anything", () => {
    const stdin = `${fileBundle([{ path: "/ok", mode: "0644", content: "x" }]).stdin}FILE ../escape 0644 eA==\n`;
    const result = run(INSTALL_FILES, ["write", "--step", "bad", "--root", root], stdin);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("line 2: '../escape' is not an absolute file path");
    expect(fs.existsSync(at("/ok"))).toBe(false);
  });
});

describe("node-step.sh under a fake root", () => {
  let root: string;
  let staging: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "node-step-root-"));
    staging = fs.mkdtempSync(path.join(os.tmpdir(), "node-step-staged-"));
  });
  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(staging, { recursive: true, force: true });
  });

  it("installs binaries from a bare file and a tarball with the files, then removes all of it", () => {
    fs.writeFileSync(path.join(staging, "runc.amd64"), "#!/bin/sh\necho runc\n");
    fs.mkdirSync(path.join(staging, "tree/bin"), { recursive: true });
    fs.writeFileSync(path.join(staging, "tree/bin/containerd"), "#!/bin/sh\necho containerd\n");
    const tar = spawnSync("tar", [
      "-czf",
      path.join(staging, "c.tar.gz"),
      "-C",
      path.join(staging, "tree"),
      "bin",
    ]);
    expect(tar.status).toBe(0);
    const script = path.join(NODE_ASSETS, "node-step.sh");
    const common = ["--step", "runtime", "--root", root, "--unit", "containerd.service"];
    const apply = run(
      script,
      [
        "apply",
        ...common,
        "--binary",
        "binary",
        path.join(staging, "runc.amd64"),
        "-",
        "/usr/local/sbin/runc",
        "--binary",
        "tar.gz",
        path.join(staging, "c.tar.gz"),
        "bin/containerd",
        "/usr/local/bin/containerd",
      ],
      fileBundle([{ path: "/etc/containerd/config.toml", mode: "0644", content: "version = 3\n" }])
        .stdin,
    );
    expect(apply.stderr).toBe("");
    expect(apply.status).toBe(0);
    const runc = fs.statSync(path.join(root, "usr/local/sbin/runc"));
    expect(runc.mode & 0o777).toBe(0o755);
    expect(fs.readFileSync(path.join(root, "usr/local/bin/containerd"), "utf8")).toContain(
      "echo containerd",
    );
    expect(fs.readFileSync(path.join(root, "etc/containerd/config.toml"), "utf8")).toBe(
      "version = 3\n",
    );

    const remove = run(script, ["remove", ...common, "--state-dir", "/var/lib/containerd"]);
    expect(remove.status).toBe(0);
    expect(fs.existsSync(path.join(root, "usr/local/sbin/runc"))).toBe(false);
    expect(fs.existsSync(path.join(root, "usr/local/bin/containerd"))).toBe(false);
    expect(fs.existsSync(path.join(root, "etc/containerd/config.toml"))).toBe(false);
  });

  it("reads an archive once for all the binaries a step takes from it (gunzip is slow under TCG)", () => {
    fs.mkdirSync(path.join(staging, "tree"), { recursive: true });
    for (const plugin of ["bridge", "host-local", "loopback"]) {
      fs.writeFileSync(path.join(staging, "tree", plugin), `#!/bin/sh\necho ${plugin}\n`);
    }
    const archive = path.join(staging, "cni.tgz");
    expect(spawnSync("tar", ["-czf", archive, "-C", path.join(staging, "tree"), "."]).status).toBe(
      0,
    );
    // A tar that counts its calls before doing the work.
    const bin = path.join(staging, "bin");
    fs.mkdirSync(bin);
    const calls = path.join(staging, "tar-calls");
    fs.writeFileSync(
      path.join(bin, "tar"),
      `#!/bin/sh\necho "$*" >>"${calls}"\nexec /bin/tar "$@"\n`,
      { mode: 0o755 },
    );
    const binaries = ["bridge", "host-local", "loopback"].flatMap((p) => [
      "--binary",
      "tar.gz",
      archive,
      `./${p}`,
      `/opt/cni/bin/${p}`,
    ]);
    const apply = spawnSync(
      "bash",
      [
        path.join(NODE_ASSETS, "node-step.sh"),
        "apply",
        "--step",
        "cni",
        "--root",
        root,
        ...binaries,
      ],
      { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } },
    );
    expect(apply.stderr).toBe("");
    expect(apply.status).toBe(0);
    for (const plugin of ["bridge", "host-local", "loopback"]) {
      expect(fs.readFileSync(path.join(root, "opt/cni/bin", plugin), "utf8")).toContain(plugin);
    }
    expect(fs.readFileSync(calls, "utf8").trim().split("\n")).toHaveLength(1);
  });

  it("fingerprints what the units run with as before: each file's path, mode and sha256, in path order", () => {
    const files = [
      { path: "/etc/kubernetes/pki/sa.key", mode: "0600", content: PEM },
      { path: "/etc/kubernetes/config.yaml", mode: "0644", content: "kind: X\n" },
      { path: "/etc/kubernetes/empty", mode: "0644", content: "" },
      { path: "/etc/kubernetes/pki/ca.crt", mode: "0644", content: "ca\n" },
    ];
    const apply = run(
      path.join(NODE_ASSETS, "node-step.sh"),
      [
        "apply",
        "--step",
        "kube-apiserver",
        "--root",
        root,
        "--no-restart",
        "/etc/kubernetes/pki/ca.crt",
      ],
      fileBundle(files).stdin,
    );
    expect(apply.stderr).toBe("");
    expect(apply.status).toBe(0);
    const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest("hex");
    // The text node-step.sh has fingerprinted since fingerprints were recorded: a node whose
    // daemons started under an older script restarts nothing when a newer one applies.
    const lines = files
      .filter((f) => f.path !== "/etc/kubernetes/pki/ca.crt")
      .sort((a, b) => (a.path < b.path ? -1 : 1))
      .map((f) => `${f.path} ${Number.parseInt(f.mode, 8).toString(8)} ${sha256(f.content)}\n`)
      .join("");
    expect(
      fs.readFileSync(path.join(root, "var/lib/hardway/binaries/kube-apiserver.started"), "utf8"),
    ).toBe(`${sha256(lines)}\n`);
  });

  it("writes and fingerprints a step's files with as many processes for twelve files as for two (each costs a fifth of a second on a loaded emulated guest)", () => {
    // Programs that count their calls before doing the work.
    const bin = path.join(staging, "bin");
    fs.mkdirSync(bin);
    const calls = path.join(staging, "calls");
    for (const program of ["stat", "sha256sum", "cut", "dirname", "mktemp", "chmod", "rm"]) {
      const real = spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).stdout;
      fs.writeFileSync(
        path.join(bin, program),
        `#!/bin/sh\necho ${program} >>"${calls}"\nexec ${real.trim()} "$@"\n`,
        { mode: 0o755 },
      );
    }
    // The processes of an apply that changes nothing, by program.
    const processes = (step: string, count: number) => {
      const files = Array.from({ length: count }, (_, i) => ({
        path: `/etc/${step}/file${i}`,
        mode: "0644",
        content: `content ${i}\n`,
      }));
      const apply = () =>
        spawnSync(
          "bash",
          [path.join(NODE_ASSETS, "node-step.sh"), "apply", "--step", step, "--root", root],
          {
            encoding: "utf8",
            input: fileBundle(files).stdin,
            env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
          },
        );
      expect(apply().status).toBe(0);
      fs.rmSync(calls, { force: true });
      const again = apply();
      expect(again.stderr).toBe("");
      expect(again.status).toBe(0);
      return fs.readFileSync(calls, "utf8").trim().split("\n").sort();
    };
    const two = processes("two", 2);
    expect(processes("twelve", 12)).toEqual(two);
  });

  it("fails with a hint when the host has not copied the release file", () => {
    const result = run(path.join(NODE_ASSETS, "node-step.sh"), [
      "apply",
      "--step",
      "kubelet",
      "--root",
      root,
      "--binary",
      "binary",
      "/nonexistent/kubelet",
      "-",
      "/usr/local/bin/kubelet",
    ]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("the host copies release files before this step");
  });
});
