/**
 * assets/cluster/wait-for-api.sh against a real HTTPS server on loopback (openssl s_server
 * serving a file named healthz): `status` tells an answering API from a silent one, so after a
 * host reboot `pulumi up` waits for the API again instead of reporting it unchanged.
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

function run(verb: string, extra: string[] = []) {
  return spawnSync("bash", [SCRIPT, verb, "--url", `https://127.0.0.1:${port}/healthz`, ...extra], {
    input: fs.readFileSync(path.join(dir, "tls.crt")),
    encoding: "utf8",
    timeout: 30_000,
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

  it("delete has nothing to undo", () => {
    expect(run("delete").status).toBe(0);
  });
});
