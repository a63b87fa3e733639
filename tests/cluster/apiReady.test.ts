/**
 * assets/node/api-ready.sh against a real HTTPS server on loopback that plays kube-apiserver:
 * /readyz for anyone, /openapi/v2 for clients with a certificate. An API server builds its
 * OpenAPI document on the first request after a start; on an emulated guest that outlasted the
 * server's request timeout, which reset the stream, and Pulumi's Kubernetes provider, which
 * reads that document once, then failed the whole run. The probe asks again until it is served.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import { selfSigned } from "../harness/selfSigned";

const SCRIPT = path.resolve(__dirname, "../../assets/node/api-ready.sh");
const PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

let dir: string;
let server: https.Server;
let port: number;

/** What the server does with each /openapi/v2 request, in order; the last one repeats. */
let openapiAnswers: ("reset" | "timeout" | "document")[];
/** Each /openapi/v2 request as the server saw it. */
let openapiRequests: { accept: string | undefined; authorized: boolean }[];

/** Runs api-ready.sh without blocking this process, which serves the requests. */
function probe(
  extra: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      "bash",
      [
        SCRIPT,
        "--cacert",
        path.join(dir, "server.crt"),
        "--url",
        `https://127.0.0.1:${port}/readyz`,
        ...extra,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const withClient = () => [
  "--client-cert",
  path.join(dir, "client.crt"),
  "--client-key",
  path.join(dir, "client.key"),
];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-api-ready-"));
  selfSigned(dir, "server", "/CN=kube-apiserver", ["subjectAltName=IP:127.0.0.1"]);
  selfSigned(dir, "client", "/CN=kube-apiserver-kubelet-client");
  server = https.createServer(
    {
      cert: fs.readFileSync(path.join(dir, "server.crt")),
      key: fs.readFileSync(path.join(dir, "server.key")),
      ca: fs.readFileSync(path.join(dir, "client.crt")),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      if (req.url === "/readyz") {
        res.end("ok");
        return;
      }
      if (req.url !== "/openapi/v2") {
        res.writeHead(404).end();
        return;
      }
      const authorized = (req.socket as tls.TLSSocket).authorized;
      openapiRequests.push({ accept: req.headers.accept, authorized });
      if (!authorized) {
        res.writeHead(401).end();
        return;
      }
      const answer = openapiAnswers[Math.min(openapiRequests.length, openapiAnswers.length) - 1];
      if (answer === "timeout") {
        res.writeHead(504).end("Timeout: request did not complete within requested timeout");
      } else if (answer === "reset") {
        // Headers and part of the body, then the connection goes away.
        res.writeHead(200, { "content-length": "1000" });
        res.write("x".repeat(100), () => req.socket.destroy());
      } else {
        res.end("x".repeat(1000));
      }
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as net.AddressInfo).port;
});

beforeEach(() => {
  openapiAnswers = ["document"];
  openapiRequests = [];
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("api-ready.sh", () => {
  it("is done at /readyz ok when no client certificate is given", async () => {
    const result = await probe(["--attempts", "2", "--interval", "1"]);
    expect({ status: result.status, stdout: result.stdout.trim() }).toEqual({
      status: 0,
      stdout: "ok",
    });
    expect(openapiRequests).toEqual([]);
  });

  it("with a client certificate, also waits for the OpenAPI document, as protobuf", async () => {
    const result = await probe([...withClient(), "--attempts", "3", "--interval", "1"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^ok\nOpenAPI document served \d+ s after ready\n$/);
    expect(openapiRequests).toEqual([{ accept: PROTOBUF, authorized: true }]);
  });

  it("asks again after a reset stream and a timeout, until the document comes back whole", async () => {
    openapiAnswers = ["reset", "timeout", "document"];
    const result = await probe([...withClient(), "--attempts", "10", "--interval", "1"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(openapiRequests).toHaveLength(3);
  });

  it("fails, naming the URL and the last answer, when the document never comes", async () => {
    openapiAnswers = ["timeout"];
    const result = await probe([...withClient(), "--attempts", "3", "--interval", "1"]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `https://127.0.0.1:${port}/openapi/v2 was not served within 3 s (last answer: 504)`,
    );
    expect(openapiRequests.length).toBeGreaterThanOrEqual(2);
  });

  it("refuses a client certificate without its key", async () => {
    const result = await probe(["--client-cert", path.join(dir, "client.crt")]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("--client-cert and --client-key must both name files");
  });
});
