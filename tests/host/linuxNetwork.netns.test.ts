/**
 * Runs the real linux-network.sh, as root, inside a throwaway network namespace: the bridge,
 * NAT, dnsmasq and the exports block are built, checked, rebuilt idempotently and torn down.
 * Nothing outside the namespace and a temp dir is touched; the exports file is a temp file.
 */
import { SpawnSyncReturns, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { replaceMarkedBlock, linuxExportLine } from "../../components/host/exports";
import { hostNetworkSteps } from "../../components/host/hostNetwork";
import { macFor } from "../../components/network/addressPlan";
import { bridgeName, natTableName } from "../../components/host/layout";
import { RCODE_NXDOMAIN, aQuery, parseAResponse } from "./dnsWire";
import { planFor } from "./fixtures";

const SCRIPT = path.resolve(__dirname, "../../assets/host/linux-network.sh");
const STACK = "nstest";
const namespace = `hwtest-${crypto.randomBytes(4).toString("hex")}`;
const plan = planFor();
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-netns-"));
const exportsFile = path.join(stateDir, "exports");
const steps = hostNetworkSteps({ plan, stack: STACK, platform: "linux", stateDir, exportsFile });
const otherStack = "# BEGIN hardway other\n/srv/other 10.9.0.0/24(rw)\n# END hardway other\n";
const userLines = "/home/me/share 10.0.0.0/8(ro,sync)\n";

function inNamespace(
  argv: readonly string[],
  input: string | Buffer = "",
): SpawnSyncReturns<Buffer> {
  const result = spawnSync("ip", ["netns", "exec", namespace, ...argv], { input, timeout: 30_000 });
  if (result.error) {
    throw result.error;
  }
  return result;
}

function text(result: SpawnSyncReturns<Buffer>): string {
  return `${result.stdout.toString()}${result.stderr.toString()}`;
}

function network(verb: "create" | "delete" | "status", input = ""): SpawnSyncReturns<Buffer> {
  return inNamespace(["bash", SCRIPT, verb, ...steps.args], input);
}

function mustSucceed(result: SpawnSyncReturns<Buffer>): string {
  const output = text(result);
  if (result.status !== 0) {
    throw new Error(`linux-network.sh exited ${result.status}:\n${output}`);
  }
  return output;
}

function dnsmasqPid(): number {
  return Number(fs.readFileSync(path.join(stateDir, "dnsmasq.pid"), "utf8").trim());
}

function resolve(name: string): { rcode: number; addresses: string[] } {
  const id = crypto.randomInt(1, 0xffff);
  // socat sends the query and prints the one datagram that comes back (-T bounds the wait).
  const reply = inNamespace(
    ["socat", "-t", "0.3", "-T", "3", "-", `UDP4:${plan.hostIp}:53`],
    aQuery(name, id),
  );
  const answer = parseAResponse(reply.stdout);
  expect(answer.id).toBe(id);
  return { rcode: answer.rcode, addresses: answer.addresses };
}

function nftTable(): SpawnSyncReturns<Buffer> {
  return inNamespace(["nft", "list", "table", "ip", natTableName(STACK)]);
}

const started = Date.now();

beforeAll(() => {
  const added = spawnSync("ip", ["netns", "add", namespace], { encoding: "utf8", timeout: 10_000 });
  if (added.status !== 0) {
    throw new Error(
      `cannot create network namespace ${namespace} (run the tests as root): ${added.stderr}`,
    );
  }
  inNamespace(["ip", "link", "set", "lo", "up"]);
  // What Docker does to a host; the script must open the FORWARD chain for its bridge.
  inNamespace(["iptables", "-P", "FORWARD", "DROP"]);
  fs.writeFileSync(exportsFile, userLines + otherStack);
});

afterAll(() => {
  // dnsmasq would keep the namespace alive after `ip netns del`, so it goes first.
  network("delete");
  const pidFile = path.join(stateDir, "dnsmasq.pid");
  if (fs.existsSync(pidFile)) {
    spawnSync("kill", [fs.readFileSync(pidFile, "utf8").trim()], { timeout: 5_000 });
  }
  spawnSync("ip", ["netns", "del", namespace], { timeout: 10_000 });
  fs.rmSync(stateDir, { recursive: true, force: true });
  console.log(
    `linux-network.sh namespace test took ${Date.now() - started} ms (namespace ${namespace})`,
  );
});

describe("linux-network.sh in a network namespace", () => {
  let firstPid = 0;
  let firstTable = "";

  it("create builds the bridge with the host address", () => {
    mustSucceed(network("create", steps.stdin));
    const addresses = text(
      inNamespace(["ip", "-4", "-o", "addr", "show", "dev", bridgeName(STACK)]),
    );
    expect(addresses).toContain(`inet ${plan.hostIp}/24 `);
    expect(fs.readFileSync(path.join(stateDir, "dnsmasq.conf"), "utf8")).toBe(steps.stdin);
  });

  it("gives the bridge a MAC of its own that a VM's tap coming or going does not change", () => {
    const mac = () =>
      text(inNamespace(["cat", `/sys/class/net/${bridgeName(STACK)}/address`])).trim();
    expect(mac()).toBe(macFor(plan.hostIp));
    // A tap with a lower MAC than the bridge's, as a restarted VM's may be.
    const tap = `${bridgeName(STACK).slice(0, 9)}-tap`;
    mustSucceed(inNamespace(["ip", "tuntap", "add", "dev", tap, "mode", "tap"]));
    try {
      mustSucceed(inNamespace(["ip", "link", "set", "dev", tap, "address", "02:00:00:00:00:01"]));
      mustSucceed(inNamespace(["ip", "link", "set", "dev", tap, "master", bridgeName(STACK)]));
      expect(mac()).toBe(macFor(plan.hostIp));
    } finally {
      inNamespace(["ip", "link", "delete", "dev", tap]);
    }
  });

  it("masquerades the subnet and the pods only when they leave both, in the stack's own nft table", () => {
    firstTable = text(nftTable());
    const inside = `ip daddr != ${plan.subnet} ip daddr != ${plan.clusterCidr} masquerade`;
    expect(firstTable).toContain(`ip saddr ${plan.subnet} ${inside}`);
    expect(firstTable).toContain(`ip saddr ${plan.clusterCidr} ${inside}`);
    expect(firstTable.match(/masquerade/g)).toHaveLength(2);
    expect(text(inNamespace(["cat", "/proc/sys/net/ipv4/ip_forward"])).trim()).toBe("1");
    const forward = text(inNamespace(["iptables", "-S", "FORWARD"]));
    expect(forward).toContain(
      `-i ${bridgeName(STACK)} -m comment --comment hardway-${bridgeName(STACK)} -j ACCEPT`,
    );
  });

  it("runs the project's dnsmasq, answering for node names, FQDNs, kubernetes and host", () => {
    firstPid = dnsmasqPid();
    expect(fs.readFileSync(`/proc/${firstPid}/comm`, "utf8").trim()).toBe("dnsmasq");
    for (const node of plan.nodes) {
      expect([node.name, resolve(node.name)]).toEqual([
        node.name,
        { rcode: 0, addresses: [node.ip] },
      ]);
      expect([node.fqdn, resolve(node.fqdn)]).toEqual([
        node.fqdn,
        { rcode: 0, addresses: [node.ip] },
      ]);
    }
    expect(resolve("kubernetes")).toEqual({ rcode: 0, addresses: [plan.apiVip] });
    expect(resolve(`kubernetes.${plan.domain}`)).toEqual({ rcode: 0, addresses: [plan.apiVip] });
    expect(resolve("host")).toEqual({ rcode: 0, addresses: [plan.hostIp] });
    expect(resolve(`nonexistent.${plan.domain}`).rcode).toBe(RCODE_NXDOMAIN);
  });

  it("binds port 53 on the bridge alone, leaving loopback to a system resolver", () => {
    const sockets = text(inNamespace(["ss", "-lnu", "sport", "=", ":53"]));
    const local = sockets
      .split("\n")
      .slice(1)
      .filter(Boolean)
      .map((line) => line.trim().split(/\s+/)[3]);
    expect(local).toContain(`${plan.hostIp}:53`);
    // The bridge's IPv6 link-local address is still the bridge.
    const elsewhere = local.filter(
      (a) => a !== `${plan.hostIp}:53` && !a.endsWith(`%${bridgeName(STACK)}:53`),
    );
    expect(elsewhere).toEqual([]);
  });

  it("renders the export block between the user's lines and other stacks' blocks", () => {
    const line = linuxExportLine(steps.exportDir, plan.subnet);
    expect(fs.readFileSync(exportsFile, "utf8")).toBe(
      replaceMarkedBlock(userLines + otherStack, STACK, [line]),
    );
    expect(fs.statSync(steps.exportDir).isDirectory()).toBe(true);
    if (!fs.readFileSync("/proc/filesystems", "utf8").includes("nfsd")) {
      console.log(
        "NFS server not exercised: this kernel has no nfsd filesystem, so no NFS server can run " +
          "here (in a namespace or not); only the rendered exports block was checked",
      );
    }
  });

  it("create again changes nothing and status is healthy", () => {
    const exportsBefore = fs.readFileSync(exportsFile, "utf8");
    const forwardBefore = text(inNamespace(["iptables", "-S", "FORWARD"]));
    mustSucceed(network("create", steps.stdin));
    expect(dnsmasqPid()).toBe(firstPid);
    expect(text(nftTable())).toBe(firstTable);
    expect(text(inNamespace(["iptables", "-S", "FORWARD"]))).toBe(forwardBefore);
    expect(fs.readFileSync(exportsFile, "utf8")).toBe(exportsBefore);
    mustSucceed(network("status"));
  });

  it("status fails when dnsmasq died, and create brings it back", () => {
    process.kill(firstPid, "SIGTERM");
    for (let i = 0; i < 50 && fs.existsSync(`/proc/${firstPid}`); i++) {
      spawnSync("sleep", ["0.1"]);
    }
    const status = network("status");
    expect(status.status).toBe(1);
    expect(text(status)).toContain("missing: dnsmasq");
    mustSucceed(network("create", steps.stdin));
    expect(dnsmasqPid()).not.toBe(firstPid);
    expect(resolve("kubernetes").addresses).toEqual([plan.apiVip]);
  });

  it("restarts dnsmasq when the config changes", () => {
    const before = dnsmasqPid();
    const changed = hostNetworkSteps({
      plan: planFor({ workers: 5 }),
      stack: STACK,
      platform: "linux",
      stateDir,
      exportsFile,
    });
    expect(changed.args).toEqual(steps.args);
    mustSucceed(network("create", changed.stdin));
    expect(dnsmasqPid()).not.toBe(before);
    expect(resolve("worker4").addresses).toEqual(["192.168.234.25"]);
  });

  it("delete removes bridge, table, forward rules, dnsmasq and the export block; again is fine", () => {
    const pid = dnsmasqPid();
    mustSucceed(network("delete"));
    expect(inNamespace(["ip", "link", "show", "dev", bridgeName(STACK)]).status).not.toBe(0);
    expect(nftTable().status).not.toBe(0);
    expect(text(inNamespace(["iptables", "-S", "FORWARD"]))).not.toContain("hardway");
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(fs.readFileSync(exportsFile, "utf8")).toBe(userLines + otherStack);
    mustSucceed(network("delete"));
    const status = network("status");
    expect(status.status).toBe(1);
    expect(text(status)).toContain("missing: bridge");
  });
});
