/**
 * A real VM on a real network: inside a throwaway network namespace, the host engineer's
 * linux-network.sh brings up the bridge and the project's dnsmasq (config from dnsmasq.ts), and
 * assets/vm/vm.sh boots a tiny guest with the argv from qemu.ts on a tap enslaved to that bridge.
 * The guest (Debian's cloud kernel and a busybox initramfs assembled here) asks for a DHCP lease,
 * pings the host address and reports both on its serial console. QEMU runs under TCG.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseConfig } from "../../components/config/schema";
import { DNSMASQ_FILES } from "../../components/host/dnsmasq";
import { hostNetworkSteps } from "../../components/host/hostNetwork";
import { addressPlan } from "../../components/network/addressPlan";
import { renderSeed } from "../../components/vm/cloudInit";
import { qemuArgv, tapName, vmFiles } from "../../components/vm/qemu";
import { encodeArgv, renderBundle, vmScriptFlags } from "../../components/vm/vmScript";
import { describeIfAvailable } from "../harness/prerequisites";

const REPO = path.resolve(__dirname, "../..");
const VM_SH = path.join(REPO, "assets/vm/vm.sh");
const NETWORK_SH = path.join(REPO, "assets/host/linux-network.sh");
const MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_pci_modern_dev",
  "virtio_pci_legacy_dev",
  "virtio_pci",
  "failover",
  "net_failover",
  "virtio_net",
];
const DEADLINE_MS = 90_000;
const LEASE_MARKER = "HARDWAY-LEASE";
const PING_MARKER = "HARDWAY-PING-OK";

function cloudKernel(): { vmlinuz: string; version: string } | undefined {
  const found = fs
    .readdirSync("/boot")
    .filter((f) => /^vmlinuz-.*-cloud-amd64$/.test(f))
    .sort()
    .pop();
  return found === undefined
    ? undefined
    : { vmlinuz: `/boot/${found}`, version: found.slice("vmlinuz-".length) };
}

function missingPrerequisite(): string | undefined {
  if (process.platform !== "linux" || process.getuid?.() !== 0) {
    return "needs Linux and root (network namespaces, bridges, taps)";
  }
  for (const tool of [
    "ip",
    "qemu-system-x86_64",
    "qemu-img",
    "dnsmasq",
    "cpio",
    "gzip",
    "genisoimage",
  ]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      return `needs ${tool}`;
    }
  }
  if (!fs.existsSync("/bin/busybox") || cloudKernel() === undefined) {
    return "needs busybox-static and linux-image-cloud-amd64";
  }
  if (!fs.existsSync(NETWORK_SH)) {
    return `needs the host network script ${NETWORK_SH}`;
  }
  return undefined;
}

/** An initramfs whose /init loads virtio-net, takes a DHCP lease, pings and reports. */
function buildInitramfs(dir: string, version: string, hostIp: string): string {
  const root = path.join(dir, "initramfs");
  for (const d of ["bin", "proc", "sys", "dev", "lib/modules"]) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.copyFileSync("/bin/busybox", path.join(root, "bin/busybox"));
  fs.chmodSync(path.join(root, "bin/busybox"), 0o755);
  const dep = fs.readFileSync(`/lib/modules/${version}/modules.dep`, "utf8");
  for (const name of MODULES) {
    const rel = dep
      .split("\n")
      .map((line) => line.split(":")[0])
      .find((p) => new RegExp(`/${name}\\.ko(\\.xz|\\.zst)?$`).test(p));
    if (rel === undefined) {
      throw new Error(`module ${name} is not in /lib/modules/${version}/modules.dep`);
    }
    const source = `/lib/modules/${version}/${rel}`;
    const target = path.join(root, "lib/modules", `${name}.ko`);
    if (rel.endsWith(".xz")) {
      fs.writeFileSync(target, execFileSync("xz", ["-dc", source]));
    } else if (rel.endsWith(".zst")) {
      fs.writeFileSync(target, execFileSync("zstd", ["-dc", source]));
    } else {
      fs.copyFileSync(source, target);
    }
  }
  const script = [
    "#!/bin/busybox sh",
    "case $1 in",
    `  bound|renew) ip addr add "$ip/$mask" dev "$interface"; echo "${LEASE_MARKER} ip=$ip" ;;`,
    "esac",
    "",
  ].join("\n");
  fs.writeFileSync(path.join(root, "bin/udhcpc.script"), script, { mode: 0o755 });
  const init = [
    "#!/bin/busybox sh",
    "/bin/busybox --install -s /bin",
    "mount -t proc proc /proc",
    "mount -t sysfs sysfs /sys",
    "mount -t devtmpfs devtmpfs /dev",
    ...MODULES.map((m) => `insmod /lib/modules/${m}.ko`),
    "ip link set lo up",
    "ip link set eth0 up",
    "udhcpc -i eth0 -n -q -t 20 -T 1 -s /bin/udhcpc.script",
    `ping -c 3 -W 2 ${hostIp} && echo ${PING_MARKER}`,
    // Keep running: the test checks status, restart and delete on a live VM.
    "while true; do sleep 60; done",
    "",
  ].join("\n");
  fs.writeFileSync(path.join(root, "init"), init, { mode: 0o755 });
  const image = path.join(dir, "initramfs.cpio.gz");
  execFileSync("sh", [
    "-c",
    `cd "${root}" && find . | cpio -o -H newc --quiet | gzip -1 > "${image}"`,
  ]);
  return image;
}

function sh(
  argv: string[],
  input?: string,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: "utf8", timeout: DEADLINE_MS });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function waitFor(what: string, check: () => boolean, deadline: number): Promise<void> {
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const skipReason = missingPrerequisite();

describeIfAvailable(skipReason, "a VM booted by vm.sh on the project's host network", () => {
  const id = crypto.randomBytes(3).toString("hex");
  const netns = `hwvm-${id}`;
  const stack = `vmtest-${id}`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "hwvm-"));
  const hostState = path.join(work, "host");
  const stateDir = path.join(work, "vm");
  const config = parseConfig(
    { subnet: "192.168.234.0/24", arch: "amd64" },
    { os: "linux", cpu: "x64" },
  );
  const plan = addressPlan(config);
  const node = plan.workers[0];
  const tap = tapName(stack, node.name);
  // The very steps HostNetwork runs, pointed at the test's own directories and exports file.
  const network = hostNetworkSteps({
    plan,
    stack,
    platform: "linux",
    stateDir: hostState,
    exportDir: path.join(work, "nfs"),
    exportsFile: path.join(work, "exports"),
  });
  if (network.vmNetwork.kind !== "bridge") {
    throw new Error("a Linux host network attaches VMs to a bridge");
  }
  const bridge = network.vmNetwork.bridge;
  const inNetns = (argv: string[], input?: string) =>
    sh(["ip", "netns", "exec", netns, ...argv], input);
  const files = vmFiles(stateDir);
  const pidOf = () => Number(fs.readFileSync(files.pidFile, "utf8").trim());
  const serial = () =>
    fs.existsSync(files.serialLog) ? fs.readFileSync(files.serialLog, "utf8") : "";
  const count = (text: string, marker: string) => text.split(marker).length - 1;
  let flags: string[] = [];
  let bundle = (_bootTimeout: number) => "";
  const started = Date.now();

  beforeAll(() => {
    const { vmlinuz, version } = cloudKernel() as { vmlinuz: string; version: string };
    const initrd = buildInitramfs(work, version, plan.hostIp);
    const base = path.join(work, "base.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", base, "64M"]);
    fs.mkdirSync(hostState, { recursive: true });
    execFileSync("ip", ["netns", "add", netns]);
    const up = inNetns(["bash", NETWORK_SH, "create", ...network.args], network.stdin);
    if (up.status !== 0) {
      throw new Error(`linux-network.sh create failed (${up.status}):\n${up.stderr}${up.stdout}`);
    }
    const argv = qemuArgv({
      name: `${stack}-${node.name}`,
      arch: "amd64",
      // KVM is not usable here, and TCG is what every host can run.
      accelerator: "tcg",
      cpus: 1,
      memory: 256,
      mac: node.mac,
      nic: { kind: "tap", ifname: tap },
      files,
      kernel: { kernel: vmlinuz, initrd, append: "console=ttyS0 panic=-1 quiet" },
    });
    const seed = renderSeed({
      node,
      network: plan,
      sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHardwayTestKeyOnlyForTheSeedIso test",
    });
    flags = vmScriptFlags({ stateDir, baseImage: base, tap: { name: tap, bridge } });
    bundle = (bootTimeout: number) =>
      renderBundle({
        "qemu-argv": encodeArgv(argv),
        "disk-size": "1",
        "boot-timeout": String(bootTimeout),
        "stop-timeout": "3",
        "user-data": seed.userData,
        "meta-data": seed.metaData,
        "network-config": seed.networkConfig,
        "ssh-private-key": "not a key: this guest has no sshd, so the wait must time out\n",
      });
  });

  afterAll(() => {
    if (fs.existsSync(files.pidFile)) {
      try {
        process.kill(pidOf(), "SIGKILL");
      } catch {
        // Already gone, which is the normal case after the delete test.
      }
    }
    inNetns(["bash", NETWORK_SH, "delete", ...network.args]);
    sh(["ip", "netns", "del", netns]);
    fs.rmSync(work, { recursive: true, force: true });
    console.log(`guest VM test: ${((Date.now() - started) / 1000).toFixed(1)} s wall time`);
  });

  it("gets its static lease from the project's dnsmasq and reaches the host address", async () => {
    const bootStart = Date.now();
    const create = inNetns(["bash", VM_SH, "create", ...flags], bundle(900));
    expect({ status: create.status, stderr: create.stderr }).toEqual({
      status: 0,
      stderr: expect.any(String) as string,
    });
    await waitFor(
      `${PING_MARKER} in ${files.serialLog}`,
      () => serial().includes(PING_MARKER),
      Date.now() + DEADLINE_MS,
    );
    console.log(
      `guest got its lease and pinged the host ${((Date.now() - bootStart) / 1000).toFixed(1)} s after vm.sh create`,
    );

    expect(serial()).toContain(`${LEASE_MARKER} ip=${node.ip}`);
    const leases = fs.readFileSync(path.join(hostState, DNSMASQ_FILES.leases), "utf8");
    expect(leases).toMatch(
      new RegExp(`^\\d+ ${node.mac} ${node.ip.replace(/\./g, "\\.")} ${node.name} `, "m"),
    );
    expect(fs.readFileSync(`/proc/${pidOf()}/cmdline`, "utf8").split("\0")).toEqual([
      ...argvOf(),
      "",
    ]);
    // The tap is enslaved to the project's bridge.
    expect(inNetns(["cat", `/sys/class/net/${tap}/master/uevent`]).stdout).toContain(
      `INTERFACE=${bridge}`,
    );
    // The seed ISO is labelled the way cloud-init's NoCloud source looks for it.
    expect(sh(["isoinfo", "-d", "-i", files.seedIso as string]).stdout).toMatch(
      /Volume id: cidata/i,
    );

    function argvOf(): string[] {
      const raw = bundle(900)
        .split("\n")
        .find((l) => l.startsWith("qemu-argv "));
      return Buffer.from((raw as string).split(" ")[1], "base64")
        .toString("utf8")
        .split("\0")
        .slice(0, -1);
    }
  }, 150_000);

  it("reports status, keeps a running VM on a repeated create and fails a bounded SSH wait with the serial log", () => {
    expect(inNetns(["bash", VM_SH, "status", ...flags]).status).toBe(0);
    const pid = pidOf();
    const again = inNetns(["bash", VM_SH, "create", ...flags], bundle(900));
    expect(again.status).toBe(0);
    expect(again.stderr).toContain("already runs with this configuration");
    expect(pidOf()).toBe(pid);

    const withSsh = vmScriptFlags({
      stateDir,
      baseImage: flags[3],
      tap: { name: tap, bridge },
      ssh: { host: node.ip, user: "ubuntu" },
    });
    const wait = inNetns(["bash", VM_SH, "create", ...withSsh], bundle(4));
    expect(wait.status).toBe(1);
    expect(wait.stderr).toContain(`SSH on ${node.ip} did not answer within 4s`);
    expect(wait.stderr).toContain(PING_MARKER);
  }, 60_000);

  it("boots again from the existing disk after its QEMU died, as after a host reboot", async () => {
    const diskBefore = fs.statSync(files.disk);
    process.kill(pidOf(), "SIGKILL");
    await waitFor(
      "status to report the VM gone",
      () => inNetns(["bash", VM_SH, "status", ...flags]).status === 1,
      Date.now() + 10_000,
    );

    const create = inNetns(["bash", VM_SH, "create", ...flags], bundle(900));
    expect(create.status).toBe(0);
    const diskAfter = fs.statSync(files.disk);
    expect(diskAfter.ino).toBe(diskBefore.ino);
    expect(diskAfter.birthtimeMs).toBe(diskBefore.birthtimeMs);
    await waitFor(
      "a second ping",
      () => count(serial(), PING_MARKER) >= 2,
      Date.now() + DEADLINE_MS,
    );
    expect(count(serial(), "=== vm.sh: starting QEMU")).toBe(2);
  }, 150_000);

  it("deletes the VM, its tap and its state, and a second delete succeeds", () => {
    const pid = pidOf();
    const del = inNetns(["bash", VM_SH, "delete", ...flags]);
    expect(del.status).toBe(0);
    // The busybox guest ignores the ACPI power button, so this also exercises the kill path.
    expect(del.stderr).toContain("killing pid");
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(fs.existsSync(stateDir)).toBe(false);
    expect(inNetns(["ip", "link", "show", "dev", tap]).status).not.toBe(0);
    expect(inNetns(["bash", VM_SH, "status", ...flags]).status).toBe(1);
    expect(inNetns(["bash", VM_SH, "delete", ...flags]).status).toBe(0);
  }, 60_000);
});
