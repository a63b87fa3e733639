/**
 * The host network for real, through the engine: `pulumi up` of the program targeting its
 * HostNetwork (bridge, NAT, the project's dnsmasq, the NFS export block), run inside a network
 * namespace and a mount namespace this test makes, so the host's own network, /etc/exports,
 * /var/lib/nfs (exportfs's table) and /var/lib/hardway are never touched. A second `up` changes nothing; a simulated host reboot
 * (bridge deleted, NAT table dropped, dnsmasq killed) makes `preview` plan the repair and `up`
 * restore it; `destroy` leaves nothing the leak checker can find.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { bridgeName, natTableName } from "../../components/host/layout";
import { findLeaks, readHostState } from "../e2e/leaks";
import { Sandbox, inSandbox, makeSandbox, removeSandbox } from "../harness/namespaces";
import { runCommand } from "../smoke/run";
import { EngineStack, lastChanges, newStack, parsePreview, reportTime } from "./engine";
import { describeIfAvailable } from "../harness/prerequisites";

let sandbox: Sandbox;
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
const inNamespaces = (): string[] => inSandbox(sandbox, "hardway-engine");

function inNetns(argv: string[]): string {
  const result = spawnSync("ip", ["netns", "exec", sandbox.namespace, ...argv], {
    encoding: "utf8",
  });
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

describeIfAvailable(skip, "the host network through the real engine", () => {
  beforeAll(() => {
    sandbox = makeSandbox("engine-net", "/srv/user-share 10.0.0.0/8(ro)\n");
    stack = newStack("net", { "hardway:stopAfter": "vms", "hardway:arch": "amd64" });
  });

  afterAll(() => {
    // Whatever a failed test left running in the namespace goes with it.
    if (sandbox !== undefined) {
      removeSandbox(sandbox);
    }
    stack?.dispose();
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
    const exportsText = fs.readFileSync(sandbox.exportsFile, "utf8");
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
      stateRoot: sandbox.stateRoot,
      readFile: (file) =>
        file === "/etc/exports" ? fs.readFileSync(sandbox.exportsFile, "utf8") : "",
      run: (program, args) =>
        runCommand("ip", ["netns", "exec", sandbox.namespace, program, ...args], {
          timeoutMs: 30_000,
        }),
    });
    expect(
      findLeaks(state, { stack: stack.name, nodes: {}, stateRoot: sandbox.stateRoot }),
    ).toEqual([]);
    expect(fs.readFileSync(sandbox.exportsFile, "utf8")).toBe("/srv/user-share 10.0.0.0/8(ro)\n");
  });
});
