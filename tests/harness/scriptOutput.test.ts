/**
 * The build scripts whose stdout the test tiers read print their value and nothing else. A first
 * build of the guest image once printed mkfs.ext4's "Creating regular file …" before its path,
 * which went into the stack's config as part of the image path: each script runs here with
 * stand-ins for what is slow or needs the network, the real mkfs.ext4 included where it is
 * there, and its stdout must be the value alone.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { exportsFrom, onePathFrom } from "./scriptOutput";
import { itIfAvailable, missingPrograms } from "./prerequisites";

const TESTS = path.resolve(__dirname, "..");
const BUILD_IMAGE = path.join(TESTS, "e2e/build-image.sh");
const TOOLCHAIN = path.join(TESTS, "engine/toolchain.sh");

const work = fs.mkdtempSync(path.join(os.tmpdir(), "hw-script-output-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Executable stand-ins in a directory of their own, put first on PATH. */
function standIns(dir: string, scripts: Record<string, string>): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(scripts)) {
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  return dir;
}

describe("onePathFrom", () => {
  it("takes one absolute path, with or without its newline", () => {
    expect(onePathFrom("build.sh", "/cache/image\n")).toBe("/cache/image");
    expect(onePathFrom("build.sh", "/cache/image")).toBe("/cache/image");
  });

  it("refuses anything else, naming the script and what it printed", () => {
    const mkfsFirst = "Creating regular file /cache/.build.x/disk.raw\n/cache/image\n";
    expect(() => onePathFrom("tests/e2e/build-image.sh", mkfsFirst)).toThrow(
      /^tests\/e2e\/build-image.sh must print one absolute path on stdout and nothing else; it printed "Creating regular file/,
    );
    for (const bad of ["", "\n", "relative/dir\n", " /cache/image\n", "/a\n/b\n"]) {
      expect(() => onePathFrom("build.sh", bad)).toThrow(/build.sh must print one absolute path/);
    }
  });
});

describe("exportsFrom", () => {
  it("reads export lines, unquoting values and expanding $PATH", () => {
    expect(
      exportsFrom(
        "toolchain.sh",
        "export HARDWAY_PULUMI=/c/bin/pulumi\nexport PATH=/c/bin:$PATH\nexport X='a b'\n",
        "/usr/bin",
      ),
    ).toEqual({ HARDWAY_PULUMI: "/c/bin/pulumi", PATH: "/c/bin:/usr/bin", X: "a b" });
  });

  it("refuses any other line, naming the script", () => {
    expect(() =>
      exportsFrom("toolchain.sh", "[toolchain] building\nexport A=b\n", "/usr/bin"),
    ).toThrow(
      'toolchain.sh must print only `export NAME=value` lines on stdout; it printed "[toolchain] building"',
    );
  });
});

describe("build-image.sh", () => {
  // Root for the script's own check; mkfs.ext4 is the real one (it wrote to stdout before).
  const missing =
    process.getuid?.() !== 0
      ? "needs root (build-image.sh refuses to run without it)"
      : missingPrograms(["mkfs.ext4", "sha256sum"]);
  itIfAvailable(
    missing,
    "prints only the image directory on a first build, when mkfs.ext4 writes to stdout",
    () => {
      const out = path.join(work, "images");
      // debootstrap makes the smallest root the script goes on with; chroot, mount and umount
      // do nothing (no packages to install, nothing to mount).
      const bin = standIns(path.join(work, "image-bin"), {
        debootstrap: [
          'root="$4"',
          'mkdir -p "$root/boot" "$root/etc/cloud/cloud.cfg.d" "$root/etc/apt" "$root/proc" "$root/sys" "$root/dev"',
          'mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/var/lib/dbus" "$root/var/cache/apt/archives" "$root/var/lib/apt/lists"',
          'echo kernel >"$root/boot/vmlinuz-6.1.0-cloud-amd64"',
          'echo initrd >"$root/boot/initrd.img-6.1.0-cloud-amd64"',
          'echo "I: a line debootstrap prints"',
        ].join("\n"),
        chroot: "exit 0",
        mount: "exit 0",
        umount: "exit 0",
      });
      const result = spawnSync("bash", [BUILD_IMAGE, "--out", out], {
        encoding: "utf8",
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
        timeout: 120_000,
      });
      expect(result.stderr).toContain("[image] image ready in");
      expect(result.status).toBe(0);
      const dir = onePathFrom(BUILD_IMAGE, result.stdout);
      expect(path.dirname(dir)).toBe(out);
      for (const file of ["disk.raw", "vmlinuz", "initrd.img"]) {
        expect(fs.existsSync(path.join(dir, file))).toBe(true);
      }
      // The second run finds it cached and prints the same value alone.
      const again = spawnSync("bash", [BUILD_IMAGE, "--out", out], {
        encoding: "utf8",
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
      expect(again.stdout).toBe(`${dir}\n`);
      expect(again.stderr).toContain("[image] cached");
    },
  );
});

describe("toolchain.sh --env", () => {
  it("prints only export lines when the toolchain is built, its progress on stderr", () => {
    const root = JSON.parse(fs.readFileSync(path.join(TESTS, "../package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const cli = root.dependencies["@pulumi/pulumi"];
    const kubernetes = root.dependencies["@pulumi/kubernetes"];
    const cache = path.join(work, "toolchain");
    // What a first build leaves in the cache: the CLI (a stand-in that reports its version),
    // the language host and the Kubernetes provider plugin.
    const bin = standIns(path.join(cache, `pulumi-v${cli}/bin`), {
      pulumi: `echo v${cli}`,
      "pulumi-language-nodejs": "exit 0",
    });
    standIns(path.join(cache, `home/plugins/resource-kubernetes-v${kubernetes}`), {
      "pulumi-resource-kubernetes": "exit 0",
    });
    // HARDWAY_TOOLCHAIN_BUILD: even a pulumi on PATH is not used. The script asks for Go
    // before it looks in its cache; this one says so if it is ever called.
    const go = standIns(path.join(work, "toolchain-bin"), { go: 'echo "go $*" >&2; exit 1' });
    const result = spawnSync("bash", [TOOLCHAIN, "--env"], {
      encoding: "utf8",
      env: {
        ...process.env,
        PATH: `${go}:${process.env.PATH}`,
        HARDWAY_TOOLCHAIN_DIR: cache,
        HARDWAY_TOOLCHAIN_BUILD: "1",
      },
      timeout: 60_000,
    });
    expect(result.stderr).toContain(`[toolchain] pulumi v${cli}`);
    expect(result.status).toBe(0);
    const env = exportsFrom(TOOLCHAIN, result.stdout, "/usr/bin");
    expect(env.HARDWAY_PULUMI).toBe(path.join(bin, "pulumi"));
    expect(env.PATH).toBe(`${bin}:/usr/bin`);
    expect(env.PULUMI_HOME).toBe(path.join(cache, "home"));
  });
});
