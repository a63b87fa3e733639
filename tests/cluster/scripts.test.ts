import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const ASSETS = path.resolve(__dirname, "../../assets");
const scriptsIn = (dir: string) =>
  fs
    .readdirSync(path.join(ASSETS, dir))
    .filter((f) => f.endsWith(".sh"))
    .map((f) => path.join(ASSETS, dir, f));
const NODE_SCRIPTS = scriptsIn("node");
const ALL = [...NODE_SCRIPTS, ...scriptsIn("cluster")];

describe("the node and cluster scripts", () => {
  it.each(ALL.map((f) => [path.relative(ASSETS, f)]))(
    "%s is strict bash with a usage message",
    (relative) => {
      const file = path.join(ASSETS, relative);
      expect(fs.readFileSync(file, "utf8")).toMatch(
        /^#!\/usr\/bin\/env bash\n(#.*\n)*set -euo pipefail$/m,
      );
      const help = spawnSync("bash", [file, "--help"], { encoding: "utf8", timeout: 10_000 });
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(/^usage: /);
    },
  );

  it("never download anything on a VM", () => {
    for (const file of NODE_SCRIPTS) {
      expect(fs.readFileSync(file, "utf8")).not.toMatch(/\b(curl|wget)\b/);
    }
  });
});
