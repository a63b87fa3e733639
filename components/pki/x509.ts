/**
 * Issuing one X.509 certificate: a CA signing itself, or a CA signing a leaf. The subject, the
 * SANs, the key usages, the CA flag and the validity come from the caller; the extensions follow
 * what kubeadm's certificates carry (key identifiers, critical basic constraints and key usage).
 * Keys are ECDSA P-256 and signatures ECDSA with SHA-256; @peculiar/x509 encodes the ASN.1 and
 * Node's WebCrypto signs.
 *
 * Runs inside the PKI's dynamic provider too, so modules are loaded at call time (see keys.ts).
 */
import type * as NodeCrypto from "node:crypto";
import type * as X509 from "@peculiar/x509";

/** RFC 5280 key usages and extended key usages, by the names the specs use. */
export const USAGES = [
  "digital_signature",
  "key_encipherment",
  "cert_signing",
  "crl_signing",
  "server_auth",
  "client_auth",
] as const;
export type Usage = (typeof USAGES)[number];

export interface IssueRequest {
  readonly subject: { readonly commonName: string; readonly organization?: string };
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly usages: readonly Usage[];
  readonly isCa: boolean;
  readonly validityHours: number;
  /** The subject's ECDSA P-256 private key, PEM; its public half goes into the certificate. */
  readonly privateKeyPem: string;
  /** The CA that signs; absent for a self-signed certificate. */
  readonly issuer?: { readonly certPem: string; readonly privateKeyPem: string };
  /** @default the current time */
  readonly now?: Date;
}

export interface IssuedCertificate {
  readonly certPem: string;
  /** RFC 3339, whole seconds. */
  readonly notBefore: string;
  readonly notAfter: string;
}

function load(): { x509: typeof X509; crypto: typeof NodeCrypto } {
  /* eslint-disable @typescript-eslint/no-require-imports -- see the file comment */
  const crypto = require("node:crypto") as typeof NodeCrypto;
  // @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs this polyfill first.
  require("reflect-metadata");
  const x509 = require("@peculiar/x509") as typeof X509;
  /* eslint-enable @typescript-eslint/no-require-imports */
  x509.cryptoProvider.set(crypto.webcrypto);
  return { x509, crypto };
}

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;

/** The key pair of a PEM private key, as WebCrypto keys; only ECDSA P-256 is accepted. */
async function webcryptoKeys(pem: string): Promise<NodeCrypto.webcrypto.CryptoKeyPair> {
  const { crypto } = load();
  const privateKey = crypto.createPrivateKey(pem);
  const details = privateKey.asymmetricKeyDetails;
  if (privateKey.asymmetricKeyType !== "ec" || details?.namedCurve !== "prime256v1") {
    throw new Error("certificates are signed with ECDSA P-256 keys only");
  }
  const subtle = crypto.webcrypto.subtle;
  const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
  const spki = crypto.createPublicKey(privateKey).export({ type: "spki", format: "der" });
  return {
    privateKey: await subtle.importKey("pkcs8", pkcs8, ECDSA_P256, true, ["sign"]),
    publicKey: await subtle.importKey("spki", spki, ECDSA_P256, true, ["verify"]),
  };
}

/** Whole seconds, as X.509 validity is encoded and as RFC 3339 prints it. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Signs a certificate for the request. */
export async function issueCertificate(request: IssueRequest): Promise<IssuedCertificate> {
  const { x509, crypto } = load();
  if (!Number.isInteger(request.validityHours) || request.validityHours < 1) {
    throw new Error(`validity must be a whole number of hours (got ${request.validityHours})`);
  }
  const unknown = request.usages.filter((u) => !(USAGES as readonly string[]).includes(u));
  if (unknown.length > 0) {
    throw new Error(`unknown usages ${unknown.join(", ")}; expected some of ${USAGES.join(", ")}`);
  }
  const subjectKeys = await webcryptoKeys(request.privateKeyPem);
  const issuerKeys = request.issuer
    ? await webcryptoKeys(request.issuer.privateKeyPem)
    : subjectKeys;
  const subjectName: X509.JsonName = [
    ...(request.subject.organization ? [{ O: [request.subject.organization] }] : []),
    { CN: [request.subject.commonName] },
  ];
  const issuerName = request.issuer
    ? new x509.X509Certificate(request.issuer.certPem).subjectName
    : subjectName;

  const flags = x509.KeyUsageFlags;
  const keyUsage: Partial<Record<Usage, number>> = {
    digital_signature: flags.digitalSignature,
    key_encipherment: flags.keyEncipherment,
    cert_signing: flags.keyCertSign,
    crl_signing: flags.cRLSign,
  };
  const extendedUsage: Partial<Record<Usage, string>> = {
    server_auth: x509.ExtendedKeyUsage.serverAuth,
    client_auth: x509.ExtendedKeyUsage.clientAuth,
  };
  const keyUsageBits = request.usages.reduce((bits, u) => bits | (keyUsage[u] ?? 0), 0);
  const extended = request.usages.flatMap((u) => (extendedUsage[u] ? [extendedUsage[u]] : []));
  const altNames = [
    ...request.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...request.ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(request.isCa, undefined, true),
    ...(keyUsageBits ? [new x509.KeyUsagesExtension(keyUsageBits, true)] : []),
    ...(extended.length ? [new x509.ExtendedKeyUsageExtension(extended, false)] : []),
    await x509.SubjectKeyIdentifierExtension.create(subjectKeys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKeys.publicKey),
    ...(altNames.length ? [new x509.SubjectAlternativeNameExtension(altNames, false)] : []),
  ];

  const notBefore = wholeSeconds(request.now ?? new Date());
  const notAfter = new Date(notBefore.getTime() + request.validityHours * 3600 * 1000);
  // A positive 128-bit serial: the top bit clear, so DER needs no sign byte.
  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f;
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString("hex"),
    subject: subjectName,
    issuer: issuerName,
    notBefore,
    notAfter,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    publicKey: subjectKeys.publicKey,
    signingKey: issuerKeys.privateKey,
    extensions,
  });
  return {
    certPem: `${certificate.toString("pem")}\n`,
    notBefore: rfc3339(notBefore),
    notAfter: rfc3339(notAfter),
  };
}

/** True once `now` is within `earlyRenewalHours` of the certificate's expiry. */
export function dueForRenewal(
  notAfter: string,
  earlyRenewalHours: number,
  now = new Date(),
): boolean {
  return now.getTime() >= new Date(notAfter).getTime() - earlyRenewalHours * 3600 * 1000;
}
