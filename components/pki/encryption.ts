import { stringify } from "yaml";

/** The name of the key inside the config; it shows up in every stored value's prefix. */
export const ENCRYPTION_KEY_NAME = "key1";
/** What etcd values written through this config start with. */
export const ENCRYPTED_VALUE_PREFIX = `k8s:enc:secretbox:v1:${ENCRYPTION_KEY_NAME}:`;

/**
 * kube-apiserver's EncryptionConfiguration: Secrets are written with secretbox (XSalsa20 +
 * Poly1305) and `identity` stays last so values written before encryption can still be read.
 */
export function renderEncryptionConfig(keyBase64: string): string {
  if (Buffer.from(keyBase64, "base64").length !== 32) {
    throw new Error("the secretbox encryption key must be exactly 32 bytes");
  }
  return stringify({
    apiVersion: "apiserver.config.k8s.io/v1",
    kind: "EncryptionConfiguration",
    resources: [
      {
        resources: ["secrets"],
        providers: [
          { secretbox: { keys: [{ name: ENCRYPTION_KEY_NAME, secret: keyBase64 }] } },
          { identity: {} },
        ],
      },
    ],
  });
}
