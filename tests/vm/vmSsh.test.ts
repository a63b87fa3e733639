/**
 * vm.sh create waits for SSH and then for cloud-init over SSH. After a host reboot in CI, the
 * guest answered SSH once and then timed out during the next banner exchange (ssh exit 255),
 * which vm.sh took for cloud-init failing. Here the "VM" is a stand-in process named like QEMU
 * (vm.sh only asks whether its pid is a QEMU), the disk a real qcow2 overlay, and ssh a stand-in
 * that fails with 255 as often as a test asks before it answers.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { itIfAvailable, missingPrograms } from "../harness/prerequisites";

const VM_SH = path.resolve(__dirname, "../../assets/vm/vm.sh");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "hw-vm-ssh-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const b64 = (text: string) => Buffer.from(text).toString("base64");

/** Runs vm.sh create for a stand-in VM whose ssh fails `drops` times at `cloud-init status`. */
function createWithDroppedSsh(name: string, drops: number, bootTimeout: number) {
  const dir = path.join(work, name);
  const bin = path.join(dir, "bin");
  const state = path.join(dir, "state");
  fs.mkdirSync(bin, { recursive: true });
  // A process whose name holds "qemu", started in the background, its pid in vm.sh's pid file.
  fs.copyFileSync("/bin/sleep", path.join(bin, "qemu-standin"));
  fs.chmodSync(path.join(bin, "qemu-standin"), 0o755);
  fs.writeFileSync(
    path.join(bin, "start-vm"),
    `#!/bin/sh\n"${bin}/qemu-standin" 600 </dev/null >/dev/null 2>&1 &\necho $! >"${state}/qemu.pid"\n`,
    { mode: 0o755 },
  );
  const drops_file = path.join(dir, "drops");
  fs.writeFileSync(drops_file, String(drops));
  fs.writeFileSync(
    path.join(bin, "ssh"),
    [
      "#!/bin/sh",
      'case "$*" in',
      `  *"cloud-init status"*) left=$(cat "${drops_file}")`,
      `    if [ "$left" -gt 0 ]; then echo $((left - 1)) >"${drops_file}"; echo "Connection timed out during banner exchange" >&2; exit 255; fi`,
      "    exit 0 ;;",
      "esac",
      "exit 0",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  const base = path.join(dir, "base.qcow2");
  spawnSync("qemu-img", ["create", "-q", "-f", "qcow2", base, "1G"]);
  const bundle = [
    `qemu-argv ${b64(`${path.join(bin, "start-vm")}`)}`,
    `disk-size ${b64("1")}`,
    `boot-timeout ${b64(String(bootTimeout))}`,
    `stop-timeout ${b64("5")}`,
    `ssh-private-key ${b64("not a key: ssh is a stand-in\n")}`,
  ].join("\n");
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const created = spawnSync(
    "bash",
    [VM_SH, "create", "--state-dir", state, "--base-image", base, "--ssh-host", "192.0.2.1"],
    { input: `${bundle}\n`, encoding: "utf8", env, timeout: 120_000 },
  );
  spawnSync("bash", [VM_SH, "delete", "--state-dir", state], { env, timeout: 60_000 });
  return { ...created, dropsLeft: Number(fs.readFileSync(drops_file, "utf8")) };
}

describe("vm.sh create, waiting for cloud-init", () => {
  const missing = missingPrograms(["qemu-img", "base64"]);

  itIfAvailable(
    missing,
    "asks again when SSH drops during the wait, and succeeds",
    () => {
      const result = createWithDroppedSsh("drops", 2, 120);
      expect(result.stderr).toContain("failed while waiting for cloud-init; asking again");
      expect(result.status).toBe(0);
      expect(result.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
      expect(result.dropsLeft).toBe(0);
    },
    120_000,
  );

  itIfAvailable(
    missing,
    "still fails once the boot timeout is over",
    () => {
      const result = createWithDroppedSsh("gives-up", 1000, 8);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain("cloud-init did not finish on 192.0.2.1");
    },
    120_000,
  );
});
