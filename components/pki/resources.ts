/**
 * The PKI's resources: private keys, certificates and random secrets, each a Pulumi dynamic
 * resource whose provider is the functions of keys.ts and x509.ts. They run inside the Pulumi
 * engine's Node.js dynamic-provider host, so the PKI needs no provider plugin to download or
 * build, and everything it makes stays in the stack's state, secrets encrypted.
 *
 * Life cycle: a key is made once and kept (a new algorithm is a new key). A certificate is
 * issued on create and re-issued in place (an update: the same resource, a new certificate) when
 * anything it says changes, when its issuer changes, or once `pulumi up` runs within
 * `earlyRenewalHours` of its expiry; so a renewal previews as an update of the certificate and
 * of the steps that install it, never as a replacement. Nothing here touches a host, so there
 * is nothing to delete.
 */
import * as pulumi from "@pulumi/pulumi";
import { GeneratedKey, KeyAlgorithm, generateKey, randomBase64 } from "./keys";
import { IssueRequest, Usage, dueForRenewal, issueCertificate } from "./x509";

/** Which of two input records' keys differ (JSON equality). */
function changedKeys<T extends object>(olds: T, news: T, keys: readonly (keyof T)[]): string[] {
  return keys
    .filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]))
    .map((k) => String(k));
}

// --- private keys ---------------------------------------------------------------------------

export interface PrivateKeyArgs {
  /** "ecdsa-p256" for certificates, "ed25519" for SSH keys. */
  readonly algorithm: KeyAlgorithm;
}

type PrivateKeyState = { readonly algorithm: KeyAlgorithm } & GeneratedKey;

export const privateKeyProvider: pulumi.dynamic.ResourceProvider<PrivateKeyArgs, PrivateKeyState> =
  {
    create(inputs) {
      const key = generateKey(inputs.algorithm);
      return Promise.resolve({
        id: `${inputs.algorithm}-key`,
        outs: { algorithm: inputs.algorithm, ...key },
      });
    },
    diff(_id, olds, news) {
      const replaces = changedKeys(olds, news, ["algorithm"]);
      return Promise.resolve({ changes: replaces.length > 0, replaces });
    },
  };

export class PrivateKey extends pulumi.dynamic.Resource {
  declare readonly algorithm: pulumi.Output<KeyAlgorithm>;
  /** Secret. */
  declare readonly privateKeyPem: pulumi.Output<string>;
  declare readonly publicKeyPem: pulumi.Output<string>;
  /** Ed25519 keys only. */
  declare readonly publicKeyOpenssh: pulumi.Output<string>;
  /** Ed25519 keys only; secret. */
  declare readonly privateKeyOpenssh: pulumi.Output<string>;

  constructor(name: string, args: PrivateKeyArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      privateKeyProvider,
      name,
      {
        algorithm: args.algorithm,
        privateKeyPem: undefined,
        publicKeyPem: undefined,
        publicKeyOpenssh: undefined,
        privateKeyOpenssh: undefined,
      },
      { ...opts, additionalSecretOutputs: ["privateKeyPem", "privateKeyOpenssh"] },
      "pki",
      "PrivateKey",
    );
  }
}

// --- certificates ---------------------------------------------------------------------------

export interface CertificateArgs {
  readonly subject: pulumi.Input<{ commonName: string; organization?: string }>;
  readonly dnsNames: pulumi.Input<readonly string[]>;
  readonly ipAddresses: pulumi.Input<readonly string[]>;
  readonly usages: pulumi.Input<readonly Usage[]>;
  readonly isCa: boolean;
  readonly validityHours: number;
  /** `pulumi up` re-issues the certificate this many hours before it expires. */
  readonly earlyRenewalHours: number;
  /** The subject's key (PrivateKey.privateKeyPem). */
  readonly privateKeyPem: pulumi.Input<string>;
  /** The signing CA; absent for a self-signed CA. */
  readonly issuer?: {
    readonly certPem: pulumi.Input<string>;
    readonly privateKeyPem: pulumi.Input<string>;
  };
}

interface CertificateInputs {
  readonly subject: IssueRequest["subject"];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly usages: readonly Usage[];
  readonly isCa: boolean;
  readonly validityHours: number;
  readonly earlyRenewalHours: number;
  readonly privateKeyPem: string;
  /** "" for a self-signed certificate. */
  readonly issuerCertPem: string;
  readonly issuerPrivateKeyPem: string;
}

interface CertificateState extends CertificateInputs {
  readonly certPem: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

/** What a certificate says; a change to any of these issues a new one. */
const CERTIFICATE_CONTENT = [
  "subject",
  "dnsNames",
  "ipAddresses",
  "usages",
  "isCa",
  "validityHours",
  "privateKeyPem",
  "issuerCertPem",
  "issuerPrivateKeyPem",
] as const;

async function issue(inputs: CertificateInputs): Promise<CertificateState> {
  const issued = await issueCertificate({
    subject: inputs.subject,
    dnsNames: inputs.dnsNames,
    ipAddresses: inputs.ipAddresses,
    usages: inputs.usages,
    isCa: inputs.isCa,
    validityHours: inputs.validityHours,
    privateKeyPem: inputs.privateKeyPem,
    issuer: inputs.issuerCertPem
      ? { certPem: inputs.issuerCertPem, privateKeyPem: inputs.issuerPrivateKeyPem }
      : undefined,
  });
  return { ...inputs, ...issued };
}

export const certificateProvider: pulumi.dynamic.ResourceProvider<
  CertificateInputs,
  CertificateState
> = {
  async create(inputs) {
    const outs = await issue(inputs);
    return { id: `${outs.notBefore}-${outs.subject.commonName}`, outs };
  },
  diff(_id, olds, news) {
    const changed = [
      ...changedKeys(olds, news, [...CERTIFICATE_CONTENT, "earlyRenewalHours"]),
      ...(dueForRenewal(olds.notAfter, news.earlyRenewalHours) ? ["notAfter"] : []),
    ];
    return Promise.resolve({ changes: changed.length > 0, replaces: [] });
  },
  async update(_id, olds, news) {
    const reissue =
      changedKeys(olds, news, CERTIFICATE_CONTENT).length > 0 ||
      dueForRenewal(olds.notAfter, news.earlyRenewalHours);
    if (!reissue) {
      // Only earlyRenewalHours changed: the certificate stays, the threshold moves.
      return { outs: { ...olds, earlyRenewalHours: news.earlyRenewalHours } };
    }
    return { outs: await issue(news) };
  },
};

export class Certificate extends pulumi.dynamic.Resource {
  declare readonly certPem: pulumi.Output<string>;
  /** RFC 3339. */
  declare readonly notBefore: pulumi.Output<string>;
  /** RFC 3339: the certificate is not valid after this. */
  declare readonly notAfter: pulumi.Output<string>;

  constructor(name: string, args: CertificateArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      certificateProvider,
      name,
      {
        subject: args.subject,
        dnsNames: args.dnsNames,
        ipAddresses: args.ipAddresses,
        usages: args.usages,
        isCa: args.isCa,
        validityHours: args.validityHours,
        earlyRenewalHours: args.earlyRenewalHours,
        privateKeyPem: pulumi.secret(args.privateKeyPem),
        issuerCertPem: args.issuer?.certPem ?? "",
        issuerPrivateKeyPem: args.issuer ? pulumi.secret(args.issuer.privateKeyPem) : "",
        certPem: undefined,
        notBefore: undefined,
        notAfter: undefined,
      },
      { ...opts, additionalSecretOutputs: ["privateKeyPem", "issuerPrivateKeyPem"] },
      "pki",
      "Certificate",
    );
  }
}

// --- random secrets -------------------------------------------------------------------------

export interface RandomSecretArgs {
  /** Number of random bytes. */
  readonly length: number;
}

export const randomSecretProvider: pulumi.dynamic.ResourceProvider<
  RandomSecretArgs,
  RandomSecretArgs & { readonly base64: string }
> = {
  create(inputs) {
    return Promise.resolve({
      id: `random-${inputs.length}`,
      outs: { length: inputs.length, base64: randomBase64(inputs.length) },
    });
  },
  diff(_id, olds, news) {
    const replaces = changedKeys(olds, news, ["length"]);
    return Promise.resolve({ changes: replaces.length > 0, replaces });
  },
};

export class RandomSecret extends pulumi.dynamic.Resource {
  /** Secret. */
  declare readonly base64: pulumi.Output<string>;

  constructor(name: string, args: RandomSecretArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      randomSecretProvider,
      name,
      { length: args.length, base64: undefined },
      { ...opts, additionalSecretOutputs: ["base64"] },
      "pki",
      "RandomSecret",
    );
  }
}
