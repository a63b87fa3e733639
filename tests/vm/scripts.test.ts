/**
 * fetch-image.sh for real: a local image used where it is, and a download (from a file:// URL,
 * as from a mirror) cached at the path the program chose, shared by stacks and verified once.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { baseImagePath, fetchImageArgs } from "../../components/vm/baseImage";

const FETCH = path.resolve(__dirname, "../../assets/vm/fetch-image.sh");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hwimg-"));
const cache = path.join(dir, "cache");
const source = path.join(dir, "image.img");
fs.writeFileSync(source, crypto.randomBytes(4096));
const digest = crypto.createHash("sha256").update(fs.readFileSync(source)).digest("hex");
const run = (verb: string, args: string[]) =>
  spawnSync("bash", [FETCH, verb, ...args], { encoding: "utf8" });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("fetch-image.sh with a local image (air-gapped, or prebaked)", () => {
  it("uses the file where it is, and checks a pinned digest", () => {
    const args = fetchImageArgs({ url: "https://x/y.img", path: source, holder: "dev" }, cache);
    expect(run("create", args).stdout).toBe(`${source}\n`);
    expect(run("status", args).status).toBe(0);
    const pinned = fetchImageArgs(
      { url: "https://x/y.img", path: source, sha256: "0".repeat(64), holder: "dev" },
      cache,
    );
    const bad = run("create", pinned);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`${source} is not the image whose sha256 is ${"0".repeat(64)}`);
    expect(run("delete", args).status).toBe(0);
    expect(fs.existsSync(source)).toBe(true);
  });
});

describe("fetch-image.sh downloading into the cache", () => {
  const url = `file://${source}`;
  const forHolder = (holder: string, sha256?: string) =>
    fetchImageArgs({ url, holder, sha256 }, cache);

  it("puts the image at the path the program computed, verified, and holds it per stack", () => {
    const dest = baseImagePath({ url, sha256: digest }, cache);
    expect(dest).toBe(path.join(cache, `sha256-${digest}`, "image.img"));
    const first = run("create", forHolder("dev", digest));
    expect(first.status).toBe(0);
    expect(first.stdout).toBe(`${dest}\n`);
    expect(fs.readFileSync(dest)).toEqual(fs.readFileSync(source));
    expect(run("create", forHolder("prod", digest)).status).toBe(0);
    expect(run("status", forHolder("prod", digest)).status).toBe(0);

    expect(run("delete", forHolder("dev", digest)).status).toBe(0);
    expect(run("status", forHolder("dev", digest)).status).toBe(1);
    expect(fs.existsSync(dest)).toBe(true);
    expect(run("delete", forHolder("prod", digest)).status).toBe(0);
    expect(fs.existsSync(dest)).toBe(false);
    expect(run("delete", forHolder("prod", digest)).status).toBe(0);
  });

  it("refuses a download whose digest does not match and keeps nothing", () => {
    const bad = run("create", forHolder("dev", "0".repeat(64)));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`sha256 of ${url} is ${digest}, expected ${"0".repeat(64)}`);
    expect(fs.existsSync(baseImagePath({ url, sha256: "0".repeat(64) }, cache))).toBe(false);
  });

  it("names an unpinned image by its URL, and status notices a cleared cache", () => {
    fs.writeFileSync(path.join(dir, "SHA256SUMS"), `${digest}  image.img\n`);
    const args = forHolder("dev");
    const dest = baseImagePath({ url }, cache);
    expect(dest).toMatch(/\/url-[0-9a-f]{16}\/image\.img$/);
    expect(run("create", args).stdout).toBe(`${dest}\n`);
    fs.rmSync(cache, { recursive: true, force: true });
    expect(run("status", args).status).toBe(1);
    expect(run("create", args).status).toBe(0);
    expect(run("status", args).status).toBe(0);
  });
});
