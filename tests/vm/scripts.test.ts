import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as crypto from "node:crypto";

const ASSETS = path.resolve(__dirname, "../../assets/vm");
const FETCH = path.join(ASSETS, "fetch-image.sh");

describe("fetch-image.sh with a local image (the air-gapped path)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hwimg-"));
  const cache = path.join(dir, "cache");
  const source = path.join(dir, "image.img");
  fs.writeFileSync(source, crypto.randomBytes(4096));
  const digest = crypto.createHash("sha256").update(fs.readFileSync(source)).digest("hex");
  const run = (...args: string[]) =>
    spawnSync("bash", [FETCH, ...args, "--cache-dir", cache], { encoding: "utf8" });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("caches the file under its digest, shares it between holders and drops it after the last", () => {
    const first = run("fetch", "--path", source, "--sha256", digest, "--holder", "dev");
    expect(first.status).toBe(0);
    const cached = path.join(cache, `sha256-${digest}.img`);
    expect(first.stdout).toBe(`${cached}\n`);
    expect(run("fetch", "--path", source, "--holder", "prod").stdout).toBe(`${cached}\n`);

    expect(run("release", "--image", cached, "--holder", "dev").status).toBe(0);
    expect(fs.existsSync(cached)).toBe(true);
    expect(run("release", "--image", cached, "--holder", "prod").status).toBe(0);
    expect(fs.existsSync(cached)).toBe(false);
    expect(run("release", "--image", cached, "--holder", "prod").status).toBe(0);
  });

  it("refuses a file whose digest does not match the pinned one and caches nothing", () => {
    const bad = run("fetch", "--path", source, "--sha256", "0".repeat(64), "--holder", "dev");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`sha256 of the image is ${digest}, expected ${"0".repeat(64)}`);
    expect(fs.readdirSync(cache).filter((f) => f.endsWith(".img"))).toEqual([]);
  });
});
