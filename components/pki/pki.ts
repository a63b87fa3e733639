/**
 * The cluster PKI: three CAs, every leaf certificate of certificateSpecs(), the service-account
 * key pair, the encryption-at-rest config, the kubeconfigs, the SSH key the host logs in with
 * and each VM's SSH host key. Private keys and everything that embeds one are Pulumi secrets.
 * The keys and certificates are this project's own resources (resources.ts), made on the host
 * by the Pulumi engine itself.
 */
import * as pulumi from "@pulumi/pulumi";
import { AddressPlan } from "../network/addressPlan";
import {
  CAS,
  CA_USAGES,
  CertSpec,
  NODE_ADMIN,
  Signer,
  certificateSpecs,
  kubeletCertId,
} from "./certificates";
import { renderEncryptionConfig } from "./encryption";
import { renderKubeconfig } from "./kubeconfig";
import { Certificate, PrivateKey, RandomSecret } from "./resources";

export interface PkiArgs {
  /** The address plan; SANs and kubeconfig servers come from it. */
  readonly plan: AddressPlan;
  /** Name of the cluster inside kubeconfigs. */
  readonly clusterName: string;
  /**
   * Lifetime of the CAs, in hours.
   * @default 87600 (10 years)
   */
  readonly caValidityHours: number;
  /**
   * Lifetime of every leaf certificate, in hours.
   * @default 8760 (1 year)
   */
  readonly validityHours: number;
  /**
   * How long before expiry `pulumi up` re-issues a certificate, in hours.
   * @default 720 (30 days)
   */
  readonly earlyRenewalHours: number;
}

export interface KeyPair {
  readonly certPem: pulumi.Output<string>;
  /** Secret. */
  readonly keyPem: pulumi.Output<string>;
  /** RFC 3339 time after which the certificate is no longer valid. */
  readonly notAfter: pulumi.Output<string>;
}

/** Every node's kubeconfig and the control-plane component kubeconfigs; all secret. */
export interface Kubeconfigs {
  /** system:masters: the stack output, kept off the VMs. */
  readonly admin: pulumi.Output<string>;
  /** admin.conf on the control nodes: cluster-admin through a binding ClusterAccess makes. */
  readonly nodeAdmin: pulumi.Output<string>;
  readonly controllerManager: pulumi.Output<string>;
  readonly scheduler: pulumi.Output<string>;
  readonly kubeProxy: pulumi.Output<string>;
  /** By node name. */
  readonly kubelets: Readonly<Record<string, pulumi.Output<string>>>;
}

/** Where each component reaches the API: through the VIP, or its own node's loopback. */
export function kubeconfigServers(plan: AddressPlan): { viaVip: string; local: string } {
  return { viaVip: plan.apiServerUrl, local: `https://127.0.0.1:${plan.apiPort}` };
}

export class Pki extends pulumi.ComponentResource {
  readonly cas: Readonly<Record<Signer, KeyPair>>;
  /** Leaf certificates by CertSpec id. */
  readonly certs: Readonly<Record<string, KeyPair>>;
  readonly specs: readonly CertSpec[];
  readonly serviceAccount: {
    readonly publicKeyPem: pulumi.Output<string>;
    readonly privateKeyPem: pulumi.Output<string>;
  };
  /** Secret: EncryptionConfiguration YAML for kube-apiserver. */
  readonly encryptionConfig: pulumi.Output<string>;
  readonly kubeconfigs: Kubeconfigs;
  readonly ssh: {
    readonly publicKey: pulumi.Output<string>;
    readonly privateKey: pulumi.Output<string>;
  };
  /** Each VM's SSH host key by node name: `ssh-ed25519 …` and its (secret) private key. */
  readonly hostKeys: Readonly<
    Record<
      string,
      { readonly publicKey: pulumi.Output<string>; readonly privateKey: pulumi.Output<string> }
    >
  >;
  /** Certificate name → expiry time, for every CA and leaf. */
  readonly expiry: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: PkiArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:pki:Pki", name, {}, opts);
    const parent = { parent: this };
    const newKey = (id: string) =>
      new PrivateKey(`${name}-${id}-key`, { algorithm: "ecdsa-p256" }, parent);

    const cas = {} as Record<Signer, KeyPair>;
    for (const ca of CAS) {
      const key = newKey(ca.id);
      const cert = new Certificate(
        `${name}-${ca.id}`,
        {
          privateKeyPem: key.privateKeyPem,
          subject: { commonName: ca.commonName, organization: args.clusterName },
          dnsNames: [],
          ipAddresses: [],
          isCa: true,
          usages: [...CA_USAGES],
          validityHours: args.caValidityHours,
          earlyRenewalHours: args.earlyRenewalHours,
        },
        parent,
      );
      cas[ca.id] = {
        certPem: cert.certPem,
        keyPem: pulumi.secret(key.privateKeyPem),
        notAfter: cert.notAfter,
      };
    }

    this.specs = certificateSpecs(args.plan);
    const certs: Record<string, KeyPair> = {};
    for (const spec of this.specs) {
      const key = newKey(spec.id);
      const signer = cas[spec.signer];
      const cert = new Certificate(
        `${name}-${spec.id}`,
        {
          privateKeyPem: key.privateKeyPem,
          subject:
            spec.organization === undefined
              ? { commonName: spec.commonName }
              : { commonName: spec.commonName, organization: spec.organization },
          dnsNames: [...spec.dnsNames],
          ipAddresses: [...spec.ipAddresses],
          isCa: false,
          usages: [...spec.usages],
          issuer: { certPem: signer.certPem, privateKeyPem: signer.keyPem },
          validityHours: args.validityHours,
          earlyRenewalHours: args.earlyRenewalHours,
        },
        parent,
      );
      certs[spec.id] = {
        certPem: cert.certPem,
        keyPem: pulumi.secret(key.privateKeyPem),
        notAfter: cert.notAfter,
      };
    }
    this.cas = cas;
    this.certs = certs;

    // kube-controller-manager signs service-account tokens with the private half; every
    // kube-apiserver verifies them with the public half.
    const saKey = newKey("service-account");
    this.serviceAccount = {
      publicKeyPem: saKey.publicKeyPem,
      privateKeyPem: pulumi.secret(saKey.privateKeyPem),
    };

    const encryptionKey = new RandomSecret(`${name}-encryption-key`, { length: 32 }, parent);
    this.encryptionConfig = pulumi.secret(encryptionKey.base64.apply(renderEncryptionConfig));

    const servers = kubeconfigServers(args.plan);
    const kubeconfig = (certId: string, user: string, server: string) =>
      pulumi.secret(
        pulumi
          .all([cas["kubernetes-ca"].certPem, certs[certId].certPem, certs[certId].keyPem])
          .apply(([caCertPem, clientCertPem, clientKeyPem]) =>
            renderKubeconfig({
              cluster: args.clusterName,
              server,
              caCertPem,
              user,
              clientCertPem,
              clientKeyPem,
            }),
          ),
      );
    this.kubeconfigs = {
      admin: kubeconfig("admin", "admin", servers.viaVip),
      nodeAdmin: kubeconfig(NODE_ADMIN, NODE_ADMIN, servers.local),
      controllerManager: kubeconfig(
        "kube-controller-manager",
        "system:kube-controller-manager",
        servers.local,
      ),
      scheduler: kubeconfig("kube-scheduler", "system:kube-scheduler", servers.local),
      kubeProxy: kubeconfig("kube-proxy", "system:kube-proxy", servers.viaVip),
      kubelets: Object.fromEntries(
        args.plan.kubeletNodes.map((n) => [
          n.name,
          kubeconfig(kubeletCertId(n.name), `system:node:${n.name}`, servers.viaVip),
        ]),
      ),
    };

    const sshKey = new PrivateKey(`${name}-ssh-key`, { algorithm: "ed25519" }, parent);
    this.ssh = {
      publicKey: sshKey.publicKeyOpenssh,
      privateKey: pulumi.secret(sshKey.privateKeyOpenssh),
    };
    this.hostKeys = Object.fromEntries(
      args.plan.nodes.map((node) => {
        const hostKey = new PrivateKey(
          `${name}-${node.name}-host-key`,
          { algorithm: "ed25519" },
          parent,
        );
        return [
          node.name,
          {
            publicKey: hostKey.publicKeyOpenssh,
            privateKey: pulumi.secret(hostKey.privateKeyOpenssh),
          },
        ];
      }),
    );

    const expiries: Record<string, pulumi.Output<string>> = {};
    for (const [id, pair] of [...Object.entries(cas), ...Object.entries(certs)]) {
      expiries[id] = pair.notAfter;
    }
    this.expiry = pulumi.output(expiries);

    this.registerOutputs({
      caCertPem: cas["kubernetes-ca"].certPem,
      expiry: this.expiry,
      sshPublicKey: this.ssh.publicKey,
    });
  }
}
