/**
 * assets/cluster/wait-for-api.sh against a real HTTPS server on loopback (openssl s_server
 * serving a file named healthz): `status` tells an answering API from a silent one, so after a
 * host reboot `pulumi up` waits for the API again instead of reporting it unchanged. When
 * `create` gives up it shows a second server's /readyz?verbose (a real HTTPS answer) and what
 * the gateway reports over SSH (ssh is a stand-in that records what it was given).
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { selfSigned } from "../harness/selfSigned";

const SCRIPT = path.resolve(__dirname, "../../assets/cluster/wait-for-api.sh");

let dir: string;
let server: ChildProcess | undefined;
let port: number;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port: p } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(p));
    });
  });
}

async function startServer(): Promise<void> {
  server = spawn(
    "openssl",
    [
      "s_server",
      "-quiet",
      "-accept",
      `127.0.0.1:${port}`,
      "-cert",
      "tls.crt",
      "-key",
      "tls.key",
      "-WWW",
    ],
    { cwd: dir, stdio: "ignore" },
  );
  for (let i = 0; i < 50; i++) {
    if (run("status").status === 0) {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("openssl s_server did not start");
}

function run(verb: string, extra: string[] = [], stdinAfterCa = "", env = process.env) {
  return spawnSync("bash", [SCRIPT, verb, "--url", `https://127.0.0.1:${port}/healthz`, ...extra], {
    input: fs.readFileSync(path.join(dir, "tls.crt"), "utf8") + stdinAfterCa,
    encoding: "utf8",
    timeout: 30_000,
    env,
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-wait-api-"));
  selfSigned(dir, "tls", "/CN=kubernetes", ["subjectAltName=IP:127.0.0.1"]);
  fs.writeFileSync(path.join(dir, "healthz"), "ok");
  port = await freePort();
  await startServer();
});

afterAll(() => {
  server?.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("wait-for-api.sh", () => {
  it("status and create pass while the API answers ok", () => {
    expect(run("status").status).toBe(0);
    const created = run("create", ["--attempts", "2", "--interval", "0"]);
    expect({ status: created.status, stdout: created.stdout.trim() }).toEqual({
      status: 0,
      stdout: "ok",
    });
  });

  it("status exits 1 when the API is silent, so up plans a create that waits again", async () => {
    server?.kill();
    await new Promise((r) => server?.once("exit", r));
    expect(run("status").status).toBe(1);
    const created = run("create", ["--attempts", "2", "--interval", "0"]);
    expect(created.status).toBe(1);
    expect(created.stderr).toMatch(/did not answer ok after 2 attempts/);
    await startServer();
    expect(run("status").status).toBe(0);
  });

  it("when it gives up, shows each API server's failing checks and the gateway's view over SSH", async () => {
    // A second "API server" that answers /readyz?verbose as kube-apiserver does while etcd lags.
    const readyDir = fs.mkdtempSync(path.join(dir, "ready-"));
    fs.copyFileSync(path.join(dir, "tls.crt"), path.join(readyDir, "tls.crt"));
    fs.copyFileSync(path.join(dir, "tls.key"), path.join(readyDir, "tls.key"));
    fs.writeFileSync(
      path.join(readyDir, "readyz?verbose"),
      "[+]ping ok\n[-]etcd-readiness failed: reason withheld\nreadyz check failed\n",
    );
    const readyPort = await freePort();
    const readyServer = spawn(
      "openssl",
      [
        "s_server",
        "-quiet",
        "-accept",
        `127.0.0.1:${readyPort}`,
        "-cert",
        "tls.crt",
        "-key",
        "tls.key",
        "-WWW",
      ],
      { cwd: readyDir, stdio: "ignore" },
    );
    // ssh stand-in: records its arguments, the key and known_hosts files it was pointed at.
    const bin = fs.mkdtempSync(path.join(dir, "bin-"));
    const record = path.join(bin, "record");
    fs.writeFileSync(
      path.join(bin, "ssh"),
      `#!/usr/bin/env bash
{ echo "args: $*"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -i) echo "key: $(head -n 1 "$2")"; shift ;;
      -o) [[ "$2" == UserKnownHostsFile=* ]] && echo "known_hosts: $(cat "\${2#UserKnownHostsFile=}")"; shift ;;
    esac
    shift
  done; } >${JSON.stringify(record)}
echo "TCP  192.168.234.20:6443 wrr"
`,
      { mode: 0o755 },
    );
    const key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n";
    const knownHost = "192.168.234.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n";
    try {
      for (let i = 0; i < 50; i++) {
        const probe = spawnSync("curl", ["-sk", `https://127.0.0.1:${readyPort}/readyz?verbose`]);
        if (probe.status === 0) {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      server?.kill();
      await new Promise((r) => server?.once("exit", r));
      const created = run(
        "create",
        [
          "--attempts",
          "1",
          "--interval",
          "0",
          "--server",
          `https://127.0.0.1:${readyPort}`,
          "--gateway",
          "hardway@192.168.234.10",
        ],
        key + knownHost,
        { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      );
      expect(created.status).toBe(1);
      expect(created.stderr).toContain(`--- https://127.0.0.1:${readyPort}/readyz?verbose:`);
      expect(created.stderr).toContain("[-]etcd-readiness failed: reason withheld");
      expect(created.stderr).not.toContain("[+]ping ok");
      expect(created.stderr).toContain("TCP  192.168.234.20:6443 wrr");
      expect(created.stderr).toMatch(/did not answer ok after 1 attempts/);
      const recorded = fs.readFileSync(record, "utf8");
      expect(recorded).toContain(
        "hardway@192.168.234.10 sudo ipvsadm -Ln; sudo tail -n 30 /var/log/ldirectord.log",
      );
      expect(recorded).toContain("StrictHostKeyChecking=yes");
      expect(recorded).toContain("key: -----BEGIN OPENSSH PRIVATE KEY-----");
      expect(recorded).toContain(`known_hosts: ${knownHost.trim()}`);
    } finally {
      readyServer.kill();
    }
  });

  it("status rides out a missed answer, so a loaded API server does not plan a needless wait", async () => {
    // The test above left the server stopped.
    expect(run("status").status).toBe(1);
    const status = spawn("bash", [SCRIPT, "status", "--url", `https://127.0.0.1:${port}/healthz`], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    status.stdin.end(fs.readFileSync(path.join(dir, "tls.crt")));
    const exited = new Promise<number | null>((r) => status.once("exit", r));
    // The first answer is missed; the server is back before the second try, 2 s later.
    await new Promise((r) => setTimeout(r, 500));
    await startServer();
    expect(await exited).toBe(0);
  });

  it("delete has nothing to undo", () => {
    expect(run("delete").status).toBe(0);
  });
});
