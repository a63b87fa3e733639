/**
 * The PKI's providers as the engine calls them: what a diff decides (re-issue, update in place,
 * nothing), and that keys and certificates are what their consumers accept.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  certificateProvider,
  privateKeyProvider,
  randomSecretProvider,
} from "../../components/pki/resources";
import { dueForRenewal } from "../../components/pki/x509";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-pki-res-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function key() {
  const made = await privateKeyProvider.create({ algorithm: "ecdsa-p256" });
  return made.outs!.privateKeyPem;
}

async function ca() {
  const privateKeyPem = await key();
  const inputs = {
    subject: { commonName: "test-ca" },
    dnsNames: [],
    ipAddresses: [],
    usages: ["cert_signing" as const, "digital_signature" as const],
    isCa: true,
    validityHours: 100,
    earlyRenewalHours: 10,
    privateKeyPem,
    issuerCertPem: "",
    issuerPrivateKeyPem: "",
  };
  return (await certificateProvider.create(inputs)).outs!;
}

describe("the certificate provider's diff", () => {
  it("changes nothing while the certificate is fresh and its inputs are the same", async () => {
    const cert = await ca();
    const inputs = Object.fromEntries(
      Object.entries(cert).filter(([k]) => !["certPem", "notBefore", "notAfter"].includes(k)),
    );
    await expect(
      certificateProvider.diff!("id", cert, inputs as typeof cert),
    ).resolves.toMatchObject({ changes: false, replaces: [] });
  });

  it.each([
    ["the subject", { subject: { commonName: "other" } }],
    ["a SAN", { dnsNames: ["x.example"] }],
    ["the validity", { validityHours: 200 }],
    ["the issuer", { issuerCertPem: "-----BEGIN CERTIFICATE-----\nnew\n" }],
  ])("re-issues the certificate in place when %s changes", async (_what, change) => {
    const cert = await ca();
    const news = { ...cert, ...change };
    const diff = await certificateProvider.diff!("id", cert, news);
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    if (!("issuerCertPem" in change)) {
      const updated = await certificateProvider.update!("id", cert, news);
      expect(updated.outs?.certPem).not.toBe(cert.certPem);
    }
  });

  it("moves the renewal threshold in place, without a new certificate", async () => {
    const cert = await ca();
    const diff = await certificateProvider.diff!("id", cert, { ...cert, earlyRenewalHours: 20 });
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const updated = await certificateProvider.update!("id", cert, {
      ...cert,
      earlyRenewalHours: 20,
    });
    expect(updated.outs?.certPem).toBe(cert.certPem);
  });

  it("re-issues in place once `up` runs within the early-renewal window", async () => {
    const cert = await ca();
    const due = { ...cert, earlyRenewalHours: 100 };
    expect(await certificateProvider.diff!("id", cert, due)).toMatchObject({
      changes: true,
      replaces: [],
    });
    const renewed = await certificateProvider.update!("id", cert, due);
    expect(renewed.outs?.certPem).not.toBe(cert.certPem);
    const notAfter = "2027-10-21T00:00:00Z";
    expect(dueForRenewal(notAfter, 720, new Date("2027-09-20T23:59:59Z"))).toBe(false);
    expect(dueForRenewal(notAfter, 720, new Date("2027-09-21T00:00:00Z"))).toBe(true);
  });
});

describe("keys", () => {
  it("makes Ed25519 keys that ssh-keygen reads, public and private halves agreeing", async () => {
    const made = (await privateKeyProvider.create({ algorithm: "ed25519" })).outs!;
    const file = path.join(dir, "id");
    fs.writeFileSync(file, made.privateKeyOpenssh!, { mode: 0o600 });
    const derived = execFileSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" });
    expect(derived.trim()).toBe(made.publicKeyOpenssh!.trim());
  });

  it("keeps a key when nothing about it changes, and makes a new one for another algorithm", async () => {
    const made = (await privateKeyProvider.create({ algorithm: "ecdsa-p256" })).outs!;
    await expect(privateKeyProvider.diff!("id", made, made)).resolves.toEqual({
      changes: false,
      replaces: [],
    });
    await expect(
      privateKeyProvider.diff!("id", made, { ...made, algorithm: "ed25519" }),
    ).resolves.toEqual({ changes: true, replaces: ["algorithm"] });
  });

  it("makes random secrets of the asked length", async () => {
    const made = (await randomSecretProvider.create({ length: 32 })).outs!;
    expect(Buffer.from(made.base64, "base64")).toHaveLength(32);
  });
});
