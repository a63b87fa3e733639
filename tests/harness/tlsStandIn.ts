/**
 * A test-only stand-in for the @pulumi/tls and @pulumi/random providers. Under Pulumi mocks it
 * turns each resource's inputs into what the real provider would produce: real keys from
 * node:crypto and real X.509 certificates from openssl, with the subject, SANs, key usages,
 * CA flag, validity and issuer the inputs ask for. Tests then check the results with openssl.
 *
 * One deliberate approximation: openssl 3.0's CLI counts validity in days, so a validity of
 * N hours becomes ceil(N / 24) days; validityEndTime is still reported to the hour.
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

type Inputs = Record<string, unknown>;
type State = Record<string, unknown>;

interface Subject {
  readonly commonName?: string;
  readonly organization?: string;
  readonly organizationalUnit?: string;
  readonly country?: string;
  readonly locality?: string;
  readonly province?: string;
}

/** The tls provider's `allowedUses` names, as openssl extension values. */
const KEY_USAGES: Record<string, string> = {
  digital_signature: "digitalSignature",
  content_commitment: "nonRepudiation",
  key_encipherment: "keyEncipherment",
  data_encipherment: "dataEncipherment",
  key_agreement: "keyAgreement",
  cert_signing: "keyCertSign",
  crl_signing: "cRLSign",
  encipher_only: "encipherOnly",
  decipher_only: "decipherOnly",
};
const EXTENDED_KEY_USAGES: Record<string, string> = {
  any_extended: "anyExtendedKeyUsage",
  server_auth: "serverAuth",
  client_auth: "clientAuth",
  code_signing: "codeSigning",
  email_protection: "emailProtection",
  timestamping: "timeStamping",
  ocsp_signing: "OCSPSigning",
};

function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function ed25519OpenSsh(key: crypto.KeyObject): { publicKey: string; privateKey: string } {
  const jwk = key.export({ format: "jwk" });
  const pub = Buffer.from(jwk.x as string, "base64url");
  const priv = Buffer.from(jwk.d as string, "base64url");
  const publicBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  const check = crypto.randomBytes(4);
  let secret = Buffer.concat([
    check,
    check,
    sshString("ssh-ed25519"),
    sshString(pub),
    sshString(Buffer.concat([priv, pub])),
    sshString(""),
  ]);
  const padding = Buffer.from(
    Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1),
  );
  secret = Buffer.concat([secret, padding]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    count,
    sshString(publicBlob),
    sshString(secret),
  ]).toString("base64");
  const lines = body.match(/.{1,70}/g) ?? [];
  return {
    publicKey: `ssh-ed25519 ${publicBlob.toString("base64")}\n`,
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`,
  };
}

export function privateKey(inputs: Inputs): State {
  const algorithm = String(inputs.algorithm);
  let pair: crypto.KeyPairKeyObjectResult;
  let privateKeyPem: string;
  if (algorithm === "RSA") {
    pair = crypto.generateKeyPairSync("rsa", { modulusLength: Number(inputs.rsaBits ?? 2048) });
    privateKeyPem = pair.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  } else if (algorithm === "ECDSA") {
    const curves: Record<string, string> = {
      P224: "secp224r1",
      P256: "prime256v1",
      P384: "secp384r1",
      P521: "secp521r1",
    };
    const namedCurve = curves[typeof inputs.ecdsaCurve === "string" ? inputs.ecdsaCurve : "P224"];
    pair = crypto.generateKeyPairSync("ec", { namedCurve });
    privateKeyPem = pair.privateKey.export({ type: "sec1", format: "pem" }).toString();
  } else if (algorithm === "ED25519") {
    pair = crypto.generateKeyPairSync("ed25519");
    privateKeyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  } else {
    throw new Error(`tls stand-in: unsupported algorithm ${algorithm}`);
  }
  const state: State = {
    ...inputs,
    privateKeyPem,
    privateKeyPemPkcs8: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
  if (algorithm === "ED25519") {
    const ssh = ed25519OpenSsh(pair.privateKey);
    state.publicKeyOpenssh = ssh.publicKey;
    state.privateKeyOpenssh = ssh.privateKey;
  }
  return state;
}

function subjectArg(subject: Subject | undefined): string {
  const parts: [string, string | undefined][] = [
    ["C", subject?.country],
    ["ST", subject?.province],
    ["L", subject?.locality],
    ["O", subject?.organization],
    ["OU", subject?.organizationalUnit],
    ["CN", subject?.commonName],
  ];
  const rdn = parts
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `/${k}=${String(v).replace(/[/\\]/g, "\\$&")}`)
    .join("");
  return rdn === "" ? "/" : rdn;
}

function sanExtension(inputs: Inputs): string | undefined {
  const dns = ((inputs.dnsNames as string[] | undefined) ?? []).map((n) => `DNS:${n}`);
  const ips = ((inputs.ipAddresses as string[] | undefined) ?? []).map((n) => `IP:${n}`);
  const uris = ((inputs.uris as string[] | undefined) ?? []).map((n) => `URI:${n}`);
  const all = [...dns, ...ips, ...uris];
  return all.length === 0 ? undefined : `subjectAltName=${all.join(",")}`;
}

function withTempDir<T>(body: (dir: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tls-stand-in-"));
  try {
    return body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): string {
  return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function createCsr(dir: string, inputs: Inputs): string {
  const keyFile = path.join(dir, "subject.key");
  fs.writeFileSync(keyFile, String(inputs.privateKeyPem));
  const san = sanExtension(inputs);
  return openssl([
    "req",
    "-new",
    "-key",
    keyFile,
    "-subj",
    subjectArg(inputs.subject as Subject | undefined),
    ...(san ? ["-addext", san] : []),
  ]);
}

export function certRequest(inputs: Inputs): State {
  return { ...inputs, certRequestPem: withTempDir((dir) => createCsr(dir, inputs)) };
}

function extensionFile(inputs: Inputs): string {
  const uses = (inputs.allowedUses as string[] | undefined) ?? [];
  const unknown = uses.filter((u) => !(u in KEY_USAGES) && !(u in EXTENDED_KEY_USAGES));
  if (unknown.length > 0) {
    throw new Error(`tls stand-in: unknown allowedUses ${unknown.join(", ")}`);
  }
  const keyUsage = uses.filter((u) => u in KEY_USAGES).map((u) => KEY_USAGES[u]);
  const extended = uses.filter((u) => u in EXTENDED_KEY_USAGES).map((u) => EXTENDED_KEY_USAGES[u]);
  return [
    `basicConstraints=critical,CA:${inputs.isCaCertificate ? "TRUE" : "FALSE"}`,
    ...(keyUsage.length ? [`keyUsage=critical,${keyUsage.join(",")}`] : []),
    ...(extended.length ? [`extendedKeyUsage=${extended.join(",")}`] : []),
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid",
    "",
  ].join("\n");
}

function validity(inputs: Inputs): State {
  const hours = Number(inputs.validityPeriodHours);
  const start = new Date();
  start.setMilliseconds(0);
  const end = new Date(start.getTime() + hours * 3600 * 1000);
  return {
    validityStartTime: start.toISOString().replace(".000Z", "Z"),
    validityEndTime: end.toISOString().replace(".000Z", "Z"),
    readyForRenewal: false,
  };
}

function sign(dir: string, csrPem: string, inputs: Inputs, signer: string[]): string {
  const csrFile = path.join(dir, "request.csr");
  const extFile = path.join(dir, "extensions.cnf");
  fs.writeFileSync(csrFile, csrPem);
  fs.writeFileSync(extFile, extensionFile(inputs));
  return openssl([
    "x509",
    "-req",
    "-in",
    csrFile,
    ...signer,
    "-set_serial",
    `0x${crypto.randomBytes(16).toString("hex")}`,
    "-days",
    String(Math.max(1, Math.ceil(Number(inputs.validityPeriodHours) / 24))),
    "-copy_extensions",
    "copy",
    "-extfile",
    extFile,
  ]);
}

export function selfSignedCert(inputs: Inputs): State {
  const certPem = withTempDir((dir) => {
    const csr = createCsr(dir, inputs);
    return sign(dir, csr, inputs, ["-key", path.join(dir, "subject.key")]);
  });
  return { ...inputs, certPem, ...validity(inputs) };
}

export function locallySignedCert(inputs: Inputs): State {
  const certPem = withTempDir((dir) => {
    const caCert = path.join(dir, "ca.crt");
    const caKey = path.join(dir, "ca.key");
    fs.writeFileSync(caCert, String(inputs.caCertPem));
    fs.writeFileSync(caKey, String(inputs.caPrivateKeyPem));
    return sign(dir, String(inputs.certRequestPem), inputs, ["-CA", caCert, "-CAkey", caKey]);
  });
  return { ...inputs, certPem, ...validity(inputs) };
}

export function randomBytes(inputs: Inputs): State {
  const bytes = crypto.randomBytes(Number(inputs.length));
  return { ...inputs, base64: bytes.toString("base64"), hex: bytes.toString("hex") };
}

/** What every mocked local command prints; a BaseImage reads it as the cached image path. */
export const MOCK_COMMAND_STDOUT = "/mock/cache/hardway/images/image.img";

/** A local command "runs" and prints MOCK_COMMAND_STDOUT. */
export function localCommand(inputs: Inputs): State {
  return { ...inputs, stdout: `${MOCK_COMMAND_STDOUT}\n`, stderr: "" };
}

/** Resource types this stand-in implements, keyed by Pulumi type token. */
export const standIns: Record<string, (inputs: Inputs) => State> = {
  "tls:index/privateKey:PrivateKey": privateKey,
  "tls:index/certRequest:CertRequest": certRequest,
  "tls:index/selfSignedCert:SelfSignedCert": selfSignedCert,
  "tls:index/locallySignedCert:LocallySignedCert": locallySignedCert,
  "random:index/randomBytes:RandomBytes": randomBytes,
  "command:local:Command": localCommand,
};
