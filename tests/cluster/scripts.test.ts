import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

// Shellcheck, strictness and usage of every script are checked in tests/assets.test.ts.
const NODE_DIR = path.resolve(__dirname, "../../assets/node");
const NODE_SCRIPTS = fs
  .readdirSync(NODE_DIR)
  .filter((f) => f.endsWith(".sh"))
  .map((f) => path.join(NODE_DIR, f));

describe("the node scripts", () => {
  it("exist", () => {
    expect(NODE_SCRIPTS.length).toBeGreaterThan(0);
  });

  it("never download anything on a VM: only the API readiness probe asks its own loopback", () => {
    for (const file of NODE_SCRIPTS) {
      const text = fs.readFileSync(file, "utf8");
      expect(text).not.toMatch(/\bwget\b/);
      if (path.basename(file) !== "api-ready.sh") {
        expect(`${file}: ${/\bcurl\b/.test(text)}`).toBe(`${file}: false`);
      }
    }
    const probe = spawnSync(
      "bash",
      [
        path.join(NODE_DIR, "api-ready.sh"),
        "--cacert",
        "/etc/hostname",
        "--url",
        "https://example.com/",
      ],
      { encoding: "utf8" },
    );
    expect(probe.status).toBe(1);
    expect(probe.stderr).toContain("on this node's loopback");
  });
});
