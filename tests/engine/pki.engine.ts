/**
 * The PKI for real: `pulumi up` of the certificates, keys, kubeconfigs and encryption config
 * through the engine and the PKI's own providers, on a stack that stops after the VMs, with
 * `--target` on the Pki component (a learner's "just chapter 4"). Every certificate is checked
 * with openssl, a second `up` changes nothing, the state holds no secret in the clear, and
 * `destroy` empties the stack.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";
import { certificateSpecs } from "../../components/pki/certificates";
import {
  EngineStack,
  PreviewSummary,
  lastChanges,
  newStack,
  parsePreview,
  reportTime,
} from "./engine";

interface StateResource {
  urn: string;
  type: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

let stack: EngineStack;
let dir = "";
const target = () => ["--target", `urn:pulumi:${stack.name}::hardway::hardway:pki:Pki**`];

function resources(showSecrets: boolean): StateResource[] {
  const exported = stack.must(["stack", "export", ...(showSecrets ? ["--show-secrets"] : [])]);
  const deployment = JSON.parse(exported.stdout) as {
    deployment: { resources?: StateResource[] };
  };
  return deployment.deployment.resources ?? [];
}

/** A value of an exported state: secrets shown with --show-secrets are JSON in `plaintext`. */
function plain(value: unknown): string {
  if (value !== null && typeof value === "object" && SECRET_SIG in value) {
    const { plaintext } = value as { plaintext?: string };
    return JSON.parse(plaintext ?? '""') as string;
  }
  return value as string;
}

function openssl(...args: string[]): string {
  return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

beforeAll(() => {
  stack = newStack("pki", { "hardway:stopAfter": "vms", "hardway:arch": "amd64" });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-engine-pki-"));
});

afterAll(() => {
  stack.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Three CAs and every leaf of the default topology. */
const CERTIFICATES =
  3 + certificateSpecs(addressPlan(parseConfig({}, { os: "linux", cpu: "x64" }))).length;

describe("the PKI through the real engine", () => {
  it("is made by `pulumi up` (with its preview), every certificate valid for openssl", () => {
    const up = stack.must(["up", "--yes", ...target()]);
    reportTime("PKI up", up.seconds);
    const state = resources(true);
    const certs = state.filter((r) => r.type === "pulumi-nodejs:dynamic/pki:Certificate");
    expect(certs.length).toBe(CERTIFICATES);
    for (const cert of certs) {
      const name = cert.urn.split("::").pop() as string;
      const outputs = Object.fromEntries(
        Object.entries(cert.outputs ?? {}).map(([k, v]) => [k, plain(v)]),
      );
      const inputs = Object.fromEntries(
        Object.entries(cert.inputs ?? {}).map(([k, v]) => [k, plain(v)]),
      );
      const certFile = path.join(dir, `${name}.crt`);
      fs.writeFileSync(certFile, outputs.certPem);
      const issuer = inputs.issuerCertPem || outputs.certPem;
      const caFile = path.join(dir, `${name}.ca`);
      fs.writeFileSync(caFile, issuer);
      expect(openssl("verify", "-CAfile", caFile, certFile)).toMatch(/: OK/);
      // The certificate carries the public half of the private key it was issued for.
      const keyFile = path.join(dir, `${name}.key`);
      fs.writeFileSync(keyFile, inputs.privateKeyPem);
      expect(openssl("pkey", "-in", keyFile, "-pubout")).toBe(
        openssl("x509", "-in", certFile, "-noout", "-pubkey"),
      );
      const end = new Date(openssl("x509", "-in", certFile, "-noout", "-enddate").split("=")[1]);
      expect(end.toISOString().replace(".000Z", "Z")).toBe(outputs.notAfter);
    }
    const outputs = JSON.parse(
      stack.must(["stack", "output", "--json", "--show-secrets"]).stdout,
    ) as {
      kubeconfig: string;
      certificateExpiry: Record<string, string>;
    };
    const kubeconfig = path.join(dir, "admin.kubeconfig");
    fs.writeFileSync(kubeconfig, outputs.kubeconfig);
    const view = execFileSync(
      "kubectl",
      ["--kubeconfig", kubeconfig, "config", "view", "--raw", "-o", "json"],
      {
        encoding: "utf8",
      },
    );
    expect(view).toContain("https://192.168.234.20:6443");
    expect(Object.keys(outputs.certificateExpiry)).toHaveLength(CERTIFICATES);
  });

  it("changes nothing on a second `up`", () => {
    const again = stack.must(["up", "--yes", ...target()]);
    reportTime("PKI up (no-op)", again.seconds);
    const changes = lastChanges(stack);
    expect(Object.keys(changes).filter((op) => op !== "same" && changes[op] > 0)).toEqual([]);
    expect(changes.same).toBeGreaterThan(70);
  });

  it("previews another number of control planes: the new nodes' keys and certificates, the API server's re-issued in place", () => {
    const setControlPlanes = (count: string) =>
      stack.must([
        "config",
        "set",
        "--config-file",
        stack.configFile,
        "hardway:controlPlanes",
        count,
      ]);
    const previewWith = (count: string) => {
      setControlPlanes(count);
      try {
        const run = stack.must(["preview", "--json", ...target()]);
        reportTime(`PKI preview (3 -> ${count} control planes)`, run.seconds);
        return parsePreview(run.stdout);
      } finally {
        setControlPlanes("3");
      }
    };
    const named = (p: PreviewSummary, op: string) =>
      p.steps
        .filter((s) => s.op === op)
        .map((s) => s.urn.split("::").pop() as string)
        .sort();
    const five = previewWith("5");
    expect(five.errors).toEqual([]);
    // The API server's certificate names every control node: the same key signs the new one.
    expect(named(five, "update")).toEqual(["pki-kube-apiserver"]);
    const created = named(five, "create");
    expect(created.filter((name) => !/control[34]/.test(name))).toEqual([]);
    expect(created).toEqual(
      expect.arrayContaining([
        "pki-control3-host-key",
        "pki-etcd-peer-control3",
        "pki-etcd-server-control4-key",
        "pki-kubelet-control4",
      ]),
    );
    expect(new Set(five.steps.map((s) => s.op))).toEqual(new Set(["same", "create", "update"]));
    const one = previewWith("1");
    expect(one.errors).toEqual([]);
    expect(named(one, "update")).toEqual(["pki-kube-apiserver"]);
    const deleted = named(one, "delete");
    expect(deleted.filter((name) => !/control[12]/.test(name))).toEqual([]);
    expect(deleted.length).toBe(created.length);
    expect(new Set(one.steps.map((s) => s.op))).toEqual(new Set(["same", "update", "delete"]));
  });

  it("keeps every private key, kubeconfig and the encryption key encrypted in the state", () => {
    const raw = fs.readFileSync(stack.stateFile(), "utf8");
    // The serialised provider code spells "PRIVATE KEY-----" too; key material follows a newline.
    expect(raw).not.toMatch(/PRIVATE KEY-----\\n[A-Za-z0-9+/]{16}/);
    expect(raw).not.toMatch(/client-key-data/);
    expect(raw).not.toMatch(/secretbox:\\n\s+keys/);
    const state = resources(false);
    const secretOutputs = (type: string, key: string) =>
      state
        .filter((r) => r.type === type)
        .map((r) => (r.outputs?.[key] as Record<string, unknown> | undefined)?.[SECRET_SIG]);
    for (const sig of secretOutputs("pulumi-nodejs:dynamic/pki:PrivateKey", "privateKeyPem")) {
      expect(sig).toBeDefined();
    }
    for (const sig of secretOutputs("pulumi-nodejs:dynamic/pki:RandomSecret", "base64")) {
      expect(sig).toBeDefined();
    }
  });

  it("is emptied by `pulumi destroy`", () => {
    const destroy = stack.must(["destroy", "--yes"]);
    reportTime("PKI destroy", destroy.seconds);
    expect(resources(false).filter((r) => !r.type.startsWith("pulumi:pulumi:"))).toEqual([]);
  });
});
