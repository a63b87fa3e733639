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

  it("never download anything on a VM", () => {
    for (const file of NODE_SCRIPTS) {
      expect(fs.readFileSync(file, "utf8")).not.toMatch(/\b(curl|wget)\b/);
    }
  });
});
