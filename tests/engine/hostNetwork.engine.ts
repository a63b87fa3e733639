/**
 * The host network for real, through the engine: `pulumi up` of the program targeting its
 * HostNetwork (bridge, NAT, the project's dnsmasq, the NFS export block), run inside a network
 * namespace and a mount namespace this test makes, so the host's own network, /etc/exports,
 * /var/lib/nfs (exportfs's table) and /var/lib/hardway are never touched. A second `up` changes nothing; a simulated host reboot
 * (bridge deleted, NAT table dropped, dnsmasq killed) makes `preview` plan the repair and `up`
 * restore it; `destroy` leaves nothing the leak checker can find.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bridgeName, natTableName } from "../../components/host/layout";
import { findLeaks, readHostState } from "../e2e/leaks";
import { inSandbox } from "../harness/namespaces";
import { runCommand } from "../smoke/run";
import { EngineStack, lastChanges, newStack, parsePreview, reportTime } from "./engine";

const namespace = `hwengine-${crypto.randomBytes(3).toString("hex")}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-engine-net-"));
const stateRoot = path.join(work, "var-lib-hardway");
const exportsFile = path.join(work, "exports");
const nfsLib = path.join(work, "var-lib-nfs");
let createdStateRoot = false;
let stack: EngineStack;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "needs root for network and mount namespaces";
  }
  if (!fs.existsSync("/etc/exports") || !fs.existsSync("/var/lib/nfs")) {
    return "needs /etc/exports and /var/lib/nfs to bind over (nfs-kernel-server)";
  }
  for (const tool of ["ip", "unshare", "dnsmasq", "nft"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}
const skip = skipReason();

/** Runs argv in the test's namespaces, /var/lib/hardway, /etc/exports and /var/lib/nfs bound to temp files. */
const inNamespaces = (): string[] =>
  inSandbox({ namespace, stateRoot, exportsFile, nfsLib }, "hardway-engine");

function inNetns(argv: string[]): string {
  const result = spawnSync("ip", ["netns", "exec", namespace, ...argv], { encoding: "utf8" });
  return `${result.stdout}${result.stderr}`;
}

// The PKI too: with --target, resources left out report no outputs, and the program derives
// files (the encryption config, kubeconfigs) from the PKI's outputs.
const target = () => [
  "--target",
  `urn:pulumi:${stack.name}::hardway::hardway:host:HostNetwork**`,
  "--target",
  `urn:pulumi:${stack.name}::hardway::hardway:pki:Pki**`,
];

(skip === undefined ? describe : describe.skip)("the host network through the real engine", () => {
  beforeAll(() => {
    fs.mkdirSync(stateRoot);
    fs.mkdirSync(nfsLib);
    fs.writeFileSync(exportsFile, "/srv/user-share 10.0.0.0/8(ro)\n");
    if (!fs.existsSync("/var/lib/hardway")) {
      fs.mkdirSync("/var/lib/hardway");
      createdStateRoot = true;
    }
    spawnSync("ip", ["netns", "add", namespace]);
    spawnSync("ip", ["-n", namespace, "link", "set", "lo", "up"]);
    stack = newStack("net", { "hardway:stopAfter": "vms", "hardway:arch": "amd64" });
  });

  afterAll(() => {
    // Whatever a failed test left running in the namespace goes with it.
    const pids = spawnSync("ip", ["netns", "pids", namespace], { encoding: "utf8" }).stdout ?? "";
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      spawnSync("kill", ["-9", pid]);
    }
    spawnSync("ip", ["netns", "del", namespace]);
    stack?.dispose();
    if (createdStateRoot) {
      fs.rmdirSync("/var/lib/hardway");
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("is made by `pulumi up`: bridge, NAT table, dnsmasq and the export block", () => {
    const up = stack.must(["up", "--yes", ...target()], { prefix: inNamespaces() });
    reportTime("host network up", up.seconds);
    const bridge = bridgeName(stack.name);
    expect(inNetns(["ip", "-br", "addr", "show", "dev", bridge])).toContain("192.168.234.1/24");
    expect(inNetns(["nft", "list", "table", "ip", natTableName(stack.name)])).toContain(
      "masquerade",
    );
    expect(inNetns(["sh", "-c", "ps -eo args | grep '^dnsmasq' || true"])).toContain(
      `/var/lib/hardway/${stack.name}/`,
    );
    const exportsText = fs.readFileSync(exportsFile, "utf8");
    expect(exportsText).toContain(`# BEGIN hardway ${stack.name}`);
    expect(exportsText).toContain("/srv/user-share 10.0.0.0/8(ro)");
  });

  it("changes nothing on a second `up`", () => {
    const again = stack.must(["up", "--yes", ...target()], { prefix: inNamespaces() });
    reportTime("host network up (no-op)", again.seconds);
    const changes = lastChanges(stack);
    expect(Object.keys(changes).filter((op) => op !== "same" && changes[op] > 0)).toEqual([]);
  });

  it("after a simulated host reboot, previews the repair and `up` restores it", () => {
    const bridge = bridgeName(stack.name);
    inNetns(["ip", "link", "delete", bridge]);
    inNetns(["nft", "delete", "table", "ip", natTableName(stack.name)]);
    inNetns(["pkill", "-KILL", "-f", `dnsmasq.*${stack.name}`]);
    const preview = stack.must(["preview", "--json", ...target()], { prefix: inNamespaces() });
    reportTime("host network preview after reboot", preview.seconds);
    const planned = parsePreview(preview.stdout).steps.filter((s) => s.op !== "same");
    expect(planned.map((s) => [s.op, s.urn.split("::").pop()])).toEqual([["update", "host-linux"]]);
    const repair = stack.must(["up", "--yes", ...target()], { prefix: inNamespaces() });
    reportTime("host network up after reboot", repair.seconds);
    expect(inNetns(["ip", "-br", "addr", "show", "dev", bridge])).toContain("192.168.234.1/24");
    expect(inNetns(["nft", "list", "table", "ip", natTableName(stack.name)])).toContain(
      "masquerade",
    );
    expect(inNetns(["sh", "-c", "ps -eo args | grep '^dnsmasq' || true"])).toContain(stack.name);
  });

  it("leaves nothing behind after `pulumi destroy`", async () => {
    const destroy = stack.must(["destroy", "--yes"], { prefix: inNamespaces() });
    reportTime("host network destroy", destroy.seconds);
    const state = await readHostState({
      stateRoot,
      readFile: (file) => (file === "/etc/exports" ? fs.readFileSync(exportsFile, "utf8") : ""),
      run: (program, args) =>
        runCommand("ip", ["netns", "exec", namespace, program, ...args], { timeoutMs: 30_000 }),
    });
    expect(findLeaks(state, { stack: stack.name, nodes: {}, stateRoot })).toEqual([]);
    expect(fs.readFileSync(exportsFile, "utf8")).toBe("/srv/user-share 10.0.0.0/8(ro)\n");
  });
});

if (skip !== undefined) {
  console.warn(`host network engine test not run: ${skip}`);
}
