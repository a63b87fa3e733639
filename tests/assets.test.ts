import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const ASSETS = path.resolve(__dirname, "../assets");
const TESTS = __dirname;

function scripts(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? scripts(full) : entry.name.endsWith(".sh") ? [full] : [];
  });
}

describe("the shell scripts in assets/", () => {
  const found = scripts(ASSETS);

  it("include the host network scripts", () => {
    expect(found.map((f) => path.relative(ASSETS, f))).toEqual(
      expect.arrayContaining(["host/linux-network.sh", "host/macos-network.sh"]),
    );
  });

  it("are all strict bash", () => {
    for (const file of found) {
      expect(`${path.relative(ASSETS, file)}\n${fs.readFileSync(file, "utf8")}`).toMatch(
        /^#!\/usr\/bin\/env bash\n(#.*\n)*set -euo pipefail$/m,
      );
    }
  });

  it("pass shellcheck with no findings", () => {
    const result = spawnSync("shellcheck", ["--severity=style", "--format=gcc", ...found], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.error).toBeUndefined();
    expect(`${result.stdout}${result.stderr}`).toBe("");
    expect(result.status).toBe(0);
  });

  const withUsage = ["host", "node", "cluster"].flatMap((dir) =>
    scripts(path.join(ASSETS, dir)).map((f) => [path.relative(ASSETS, f)]),
  );
  it.each(withUsage)("%s prints its usage on --help", (relative) => {
    const help = spawnSync("bash", [path.join(ASSETS, relative), "--help"], {
      encoding: "utf8",
      timeout: 10_000,
    });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: /);
  });

  it.each(scripts(path.join(ASSETS, "host")).map((f) => [path.relative(ASSETS, f)]))(
    "%s refuses an unknown verb with its usage",
    (relative) => {
      const file = path.join(ASSETS, relative);
      const wrong = spawnSync("bash", [file, "frobnicate"], { encoding: "utf8", timeout: 10_000 });
      expect(wrong.status).toBe(2);
      expect(wrong.stderr).toMatch(/usage: /);
    },
  );
});

describe("the test tiers' shell scripts (toolchain, mirror, image builds)", () => {
  const found = scripts(TESTS);

  it("include the toolchain and the e2e builds", () => {
    expect(found.map((f) => path.relative(TESTS, f))).toEqual(
      expect.arrayContaining([
        "engine/toolchain.sh",
        "e2e/build-mirror.sh",
        "e2e/build-image.sh",
        "e2e/build-cilium-rootfs.sh",
        "harness/progress.sh",
      ]),
    );
  });

  it("pass shellcheck with no findings, following what they source", () => {
    const result = spawnSync(
      "shellcheck",
      ["--external-sources", "--severity=style", "--format=gcc", ...found],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(result.error).toBeUndefined();
    expect(`${result.stdout}${result.stderr}`).toBe("");
    expect(result.status).toBe(0);
  });
});
