import { stringify } from "yaml";

export interface KubeconfigArgs {
  /** Name of the cluster entry, e.g. "hardway". */
  readonly cluster: string;
  /** API server URL, e.g. https://192.168.234.20:6443. */
  readonly server: string;
  readonly caCertPem: string;
  /** The user's name inside the file, usually the certificate's CN. */
  readonly user: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
}

const b64 = (text: string) => Buffer.from(text).toString("base64");

/** A self-contained kubeconfig (certificates embedded), serialised from an object. */
export function renderKubeconfig(args: KubeconfigArgs): string {
  const context = `${args.user}@${args.cluster}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: args.cluster,
        cluster: { server: args.server, "certificate-authority-data": b64(args.caCertPem) },
      },
    ],
    users: [
      {
        name: args.user,
        user: {
          "client-certificate-data": b64(args.clientCertPem),
          "client-key-data": b64(args.clientKeyPem),
        },
      },
    ],
    contexts: [{ name: context, context: { cluster: args.cluster, user: args.user } }],
    "current-context": context,
    preferences: {},
  });
}
