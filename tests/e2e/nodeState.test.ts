import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { nodeStateScript } from "./nodeState";

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
