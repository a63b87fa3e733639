/**
 * Private keys and their encodings: ECDSA P-256 for the cluster's certificates, Ed25519 for SSH
 * (the login key and every VM's host key). Node's crypto makes the keys; the OpenSSH encodings
 * are written here because Node has none.
 *
 * These functions also run inside the PKI's dynamic providers, whose code Pulumi serialises into
 * the state: they load Node's modules with `require` at call time instead of capturing imports.
 */
import type * as NodeCrypto from "node:crypto";

export const KEY_ALGORITHMS = ["ecdsa-p256", "ed25519"] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export interface GeneratedKey {
  /** SEC1 ("EC PRIVATE KEY") for ECDSA, PKCS#8 for Ed25519. Secret. */
  readonly privateKeyPem: string;
  /** SubjectPublicKeyInfo PEM. */
  readonly publicKeyPem: string;
  /** `ssh-ed25519 AAAA…` (Ed25519 only). */
  readonly publicKeyOpenssh?: string;
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` (Ed25519 only). Secret. */
  readonly privateKeyOpenssh?: string;
}

function nodeCrypto(): typeof NodeCrypto {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see the file comment
  return require("node:crypto") as typeof NodeCrypto;
}

/** An SSH wire-format string: a 32-bit big-endian length, then the bytes. */
export function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/**
 * The OpenSSH encodings of an Ed25519 key (PROTOCOL.key in OpenSSH's sources): the public line
 * and an unencrypted `openssh-key-v1` private key, as ssh-keygen writes them.
 */
export function opensshEd25519(
  privateKey: NodeCrypto.KeyObject,
  comment = "",
): { publicKey: string; privateKey: string } {
  const crypto = nodeCrypto();
  const jwk = privateKey.export({ format: "jwk" });
  const pub = Buffer.from(String(jwk.x), "base64url");
  const seed = Buffer.from(String(jwk.d), "base64url");
  const publicBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  // Two equal random words let ssh-keygen tell a wrong passphrase from a corrupt file.
  const check = crypto.randomBytes(4);
  const secret = Buffer.concat([
    check,
    check,
    sshString("ssh-ed25519"),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const padding = Buffer.from(
    Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1),
  );
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    count,
    sshString(publicBlob),
    sshString(Buffer.concat([secret, padding])),
  ]).toString("base64");
  const lines = body.match(/.{1,70}/g) ?? [];
  return {
    publicKey: `ssh-ed25519 ${publicBlob.toString("base64")}${comment ? ` ${comment}` : ""}\n`,
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`,
  };
}

/** A new private key of the given algorithm, in every encoding its users need. */
export function generateKey(algorithm: KeyAlgorithm): GeneratedKey {
  const crypto = nodeCrypto();
  if (algorithm === "ecdsa-p256") {
    const pair = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    return {
      privateKeyPem: pair.privateKey.export({ type: "sec1", format: "pem" }).toString(),
      publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
    };
  }
  if (algorithm === "ed25519") {
    const pair = crypto.generateKeyPairSync("ed25519");
    const openssh = opensshEd25519(pair.privateKey);
    return {
      privateKeyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
      publicKeyOpenssh: openssh.publicKey,
      privateKeyOpenssh: openssh.privateKey,
    };
  }
  throw new Error(
    `unknown key algorithm "${String(algorithm)}"; expected ${KEY_ALGORITHMS.join(" or ")}`,
  );
}

/** `length` random bytes, base64: the encryption-at-rest key. */
export function randomBase64(length: number): string {
  if (!Number.isInteger(length) || length < 1) {
    throw new Error(`a random secret needs a whole, positive number of bytes (got ${length})`);
  }
  return nodeCrypto().randomBytes(length).toString("base64");
}
