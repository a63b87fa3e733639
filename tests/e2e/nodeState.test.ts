import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { consoleTail, nodeStateScript } from "./nodeState";

/** Stand-ins for systemctl and journalctl: etcd is installed and restarted, nothing else. */
function standIns(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-node-state-"));
  const write = (name: string, body: string) =>
    fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
  write(
    "systemctl",
    [
      'if [[ "$*" == *"--value"* ]]; then [[ "$*" == *etcd.service* ]] && echo loaded || echo not-found; exit 0; fi',
      'printf "ActiveState=activating\\nSubState=start\\nNRestarts=6\\n"',
    ].join("\n"),
  );
  write(
    "journalctl",
    [
      'if [[ "$*" == *-k* ]]; then echo "[ 9.1] Out of memory: Killed process 812 (kube-apiserver)"; exit 0; fi',
      'echo "[ 12.0] control0 kube-apiserver[700]: I1203 10:00:00.000 1 flags.go:64] FLAG: --v=2"',
      'echo "[ 40.2] control0 kube-apiserver[700]: F1203 10:00:28.000 1 instance.go:1] Error creating leases"',
      'echo "[ 40.3] control0 systemd[1]: kube-apiserver.service: Main process exited, code=exited, status=255"',
    ].join("\n"),
  );
  return dir;
}

describe("nodeStateScript", () => {
  it("prints installed units' restarts, fatal lines and OOM kills, and never fails", () => {
    const bin = standIns();
    const run = spawnSync("bash", ["-c", nodeStateScript()], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    });
    fs.rmSync(bin, { recursive: true, force: true });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("etcd: ActiveState=activating SubState=start NRestarts=6");
    expect(run.stdout).not.toContain("kubelet:");
    expect(run.stdout).toContain("F1203 10:00:28.000 1 instance.go:1] Error creating leases");
    expect(run.stdout).toContain("Main process exited");
    expect(run.stdout).not.toContain("FLAG: --v=2");
    expect(run.stdout).toContain("Killed process 812 (kube-apiserver)");
  });

  it("passes shellcheck", () => {
    const check = spawnSync("shellcheck", ["-s", "bash", "-"], {
      input: nodeStateScript(),
      encoding: "utf8",
    });
    expect(check.stdout + check.stderr).toBe("");
    expect(check.status).toBe(0);
  });
});

describe("consoleTail", () => {
  // As a guest's serial console writes it: CR LF, a terminal escape, a login prompt last.
  const serial = [
    "[    3.104] virtio_net virtio1 enp0s2: renamed from eth0\r",
    "[\x1b[0;32m  OK  \x1b[0m] Started ssh.service - OpenBSD Secure Shell server.\r",
    "[ 4262.513] NETDEV WATCHDOG: enp0s2 (virtio_net): transmit queue 0 timed out\r",
    "[ 4262.514] WARNING: CPU: 0 PID: 0 at net/sched/sch_generic.c:525 dev_watchdog+0x207/0x210\r",
    "",
    "control0 login: \r",
  ].join("\n");

  it("puts the kernel's complaints first, then the console's last lines, escapes taken out", () => {
    const tail = consoleTail(serial, 2);
    expect(tail.split("\n")).toEqual([
      "kernel complaints: ",
      "  [ 4262.513] NETDEV WATCHDOG: enp0s2 (virtio_net): transmit queue 0 timed out",
      "last 2 console lines:",
      "  [ 4262.514] WARNING: CPU: 0 PID: 0 at net/sched/sch_generic.c:525 dev_watchdog+0x207/0x210",
      "  control0 login: ",
    ]);
    expect(consoleTail(serial)).toContain("  [  OK  ] Started ssh.service");
  });

  it("says when the kernel complained of nothing", () => {
    expect(consoleTail("control0 login: \r\n")).toMatch(/^kernel complaints: none\n/);
  });
});
