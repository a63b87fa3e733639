/** Which PKI material each step installs, as RemoteFileInputs at the paths of kubernetes/paths.ts. */
import * as pulumi from "@pulumi/pulumi";
import { CA_FILES, certFiles } from "../kubernetes/paths";
import { Pki } from "../pki/pki";
import { Signer } from "../pki/certificates";
import { RemoteFileInput } from "./remoteFiles";

/** The PKI outputs the steps read. */
export type PkiMaterial = Pick<
  Pki,
  "cas" | "certs" | "serviceAccount" | "encryptionConfig" | "kubeconfigs" | "ssh"
>;

export const PUBLIC = "0644";
export const PRIVATE = "0600";

export function caCertFile(pki: PkiMaterial, signer: Signer): RemoteFileInput {
  return { path: CA_FILES[signer].cert, mode: PUBLIC, content: pki.cas[signer].certPem };
}

/** The CA's key: only kube-controller-manager, which signs with the cluster CA, gets one. */
export function caKeyFile(pki: PkiMaterial, signer: Signer): RemoteFileInput {
  return { path: CA_FILES[signer].key, mode: PRIVATE, content: pki.cas[signer].keyPem };
}

/** A leaf certificate and its key, where certFiles says the daemons read them. */
export function leafFiles(pki: PkiMaterial, certId: string): RemoteFileInput[] {
  const pair = pki.certs[certId];
  if (pair === undefined) {
    throw new Error(`the PKI has no certificate "${certId}"`);
  }
  const files = certFiles(certId);
  return [
    { path: files.cert, mode: PUBLIC, content: pair.certPem },
    { path: files.key, mode: PRIVATE, content: pair.keyPem },
  ];
}

export function textFile(
  path: string,
  content: pulumi.Input<string>,
  mode = PUBLIC,
): RemoteFileInput {
  return { path, mode, content };
}
