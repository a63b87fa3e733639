/**
 * The sshConfig output, read by the real OpenSSH client (`ssh -G` resolves a config without
 * connecting): every VM's host key is pinned strictly through KnownHostsCommand, and what that
 * command prints is a known_hosts line ssh-keygen finds under the alias.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { sshConfigSnippet } from "../../components/cluster/outputs";
import { parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";

const plan = addressPlan(parseConfig({ workers: 1 }, { os: "linux", cpu: "x64" }));
let dir: string;
let config: string;
let hostKey: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-sshconfig-"));
  const made = spawnSync("ssh-keygen", [
    "-q",
    "-t",
    "ed25519",
    "-N",
    "",
    "-C",
    "a comment",
    "-f",
    path.join(dir, "host"),
  ]);
  expect(made.status).toBe(0);
  hostKey = fs.readFileSync(path.join(dir, "host.pub"), "utf8");
  const keys = Object.fromEntries(plan.nodes.map((n) => [n.name, hostKey]));
  config = path.join(dir, "config");
  fs.writeFileSync(
    config,
    sshConfigSnippet(plan, "~/.ssh/hardway-dev", "debian", keys, "hardway-dev"),
  );
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function resolved(host: string): Map<string, string> {
  const result = spawnSync("ssh", ["-G", "-F", config, host], { encoding: "utf8" });
  expect(result.stderr).toBe("");
  return new Map(
    result.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => [line.split(" ")[0], line.slice(line.indexOf(" ") + 1)]),
  );
}

describe("sshConfig", () => {
  it.each(["control0", "control0.hardway.internal", "worker0", "gateway"])(
    "%s: reaches the VM as the image's user and checks its host key strictly",
    (host) => {
      const node = plan.nodes.find((n) => host.startsWith(n.name))!;
      const c = resolved(host);
      expect(c.get("hostname")).toBe(node.ip);
      expect(c.get("user")).toBe("debian");
      expect(c.get("stricthostkeychecking")).toBe("true");
      expect(c.get("hostkeyalias")).toBe(`hardway-dev-${node.name}`);
      expect(c.get("userknownhostsfile")).toBe("/dev/null");
    },
  );

  it("hands ssh exactly the VM's key under its alias, comment left out", () => {
    const command = resolved("worker0").get("knownhostscommand")!;
    const printed = spawnSync("sh", ["-c", command], { encoding: "utf8" }).stdout;
    const [type, key] = hostKey.split(" ");
    expect(printed).toBe(`hardway-dev-worker0 ${type} ${key}\n`);
    const known = path.join(dir, "known_hosts");
    fs.writeFileSync(known, printed);
    const found = spawnSync("ssh-keygen", ["-F", "hardway-dev-worker0", "-f", known], {
      encoding: "utf8",
    });
    expect(found.status).toBe(0);
  });

  it("refuses to render without a host key for every VM", () => {
    expect(() => sshConfigSnippet(plan, "~/.ssh/k", "debian", {}, "hardway-dev")).toThrow(
      "no OpenSSH ed25519 host key for gateway",
    );
  });
});
