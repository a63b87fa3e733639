/**
 * The PKI under mocks, with real keys and certificates from its own providers, checked by the
 * programs that will consume them: openssl for every certificate, kubectl for every kubeconfig.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";
import { CertSpec } from "../../components/pki/certificates";
import { ENCRYPTED_VALUE_PREFIX } from "../../components/pki/encryption";
import { KeyPair, Pki } from "../../components/pki/pki";
import { RecordedResource, installMocks, unwrap } from "../harness/mocks";

const plan = addressPlan(parseConfig({}, { os: "linux", cpu: "x64" }));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-pki-"));
let pki: Pki;
let resources: RecordedResource[];

interface Written {
  cert: string;
  key: string;
  keySecret: boolean;
}
const written: Record<string, Written> = {};

async function write(id: string, pair: KeyPair): Promise<Written> {
  const cert = await unwrap(pair.certPem);
  const key = await unwrap(pair.keyPem);
  const files = {
    cert: path.join(dir, `${id}.crt`),
    key: path.join(dir, `${id}.key`),
    keySecret: key.secret,
  };
  fs.writeFileSync(files.cert, cert.value);
  fs.writeFileSync(files.key, key.value);
  return files;
}

function openssl(...args: string[]): string {
  return execFileSync("openssl", args, { encoding: "utf8" });
}

function caFile(signer: CertSpec["signer"]): string {
  return written[signer].cert;
}

beforeAll(async () => {
  resources = await installMocks(pulumi);
  pki = new Pki("pki", {
    plan,
    clusterName: "hardway-test",
    caValidityHours: 87600,
    validityHours: 8760,
    earlyRenewalHours: 720,
  });
  for (const [id, pair] of Object.entries(pki.cas)) {
    written[id] = await write(id, pair);
  }
  for (const [id, pair] of Object.entries(pki.certs)) {
    written[id] = await write(id, pair);
  }
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("the certificate authorities", () => {
  it.each(["kubernetes-ca", "etcd-ca", "front-proxy-ca"])(
    "%s is a self-signed CA for 10 years",
    (id) => {
      const text = openssl("x509", "-in", written[id].cert, "-noout", "-text");
      expect(text).toMatch(/CA:TRUE/);
      expect(text).toMatch(/Certificate Sign, CRL Sign/);
      expect(openssl("verify", "-CAfile", written[id].cert, written[id].cert)).toMatch(/: OK/);
      const subject = openssl(
        "x509",
        "-in",
        written[id].cert,
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
      );
      expect(subject.trim()).toBe(`subject=CN=${id},O=hardway-test`);
      const end = new Date(
        openssl("x509", "-in", written[id].cert, "-noout", "-enddate").split("=")[1],
      );
      const years = (end.getTime() - Date.now()) / (365 * 24 * 3600 * 1000);
      expect(years).toBeGreaterThan(9.9);
      expect(years).toBeLessThan(10.1);
    },
  );
});

describe("every leaf certificate", () => {
  const specs = () => pki.specs;

  it("exists for each node that needs one", () => {
    const ids = specs().map((s) => s.id);
    for (const n of plan.kubeletNodes) {
      expect(ids).toContain(`kubelet-${n.name}`);
    }
    for (const n of plan.controls) {
      expect(ids).toContain(`etcd-server-${n.name}`);
      expect(ids).toContain(`etcd-peer-${n.name}`);
    }
    expect(ids).not.toContain("kubelet-gateway");
  });

  it("is signed by its CA, carries its spec's subject, SANs and usages, and matches its key", () => {
    for (const spec of specs()) {
      const { cert, key } = written[spec.id];
      expect(openssl("verify", "-CAfile", caFile(spec.signer), cert)).toMatch(/: OK/);
      const subject = openssl(
        "x509",
        "-in",
        cert,
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
      ).trim();
      const expected = [
        `CN=${spec.commonName}`,
        ...(spec.organization ? [`O=${spec.organization}`] : []),
      ];
      expect(`${spec.id} ${subject}`).toBe(`${spec.id} subject=${expected.join(",")}`);

      const text = openssl("x509", "-in", cert, "-noout", "-text");
      expect(text).toMatch(/CA:FALSE/);
      expect(text).toMatch(/Digital Signature, Key Encipherment/);
      const eku = /X509v3 Extended Key Usage:\s*\n\s*(.*)\n/.exec(text)?.[1] ?? "";
      const wantEku = [
        ...(spec.usages.includes("server_auth") ? ["TLS Web Server Authentication"] : []),
        ...(spec.usages.includes("client_auth") ? ["TLS Web Client Authentication"] : []),
      ];
      expect(`${spec.id}: ${eku}`).toBe(`${spec.id}: ${wantEku.join(", ")}`);

      const san = /X509v3 Subject Alternative Name:\s*\n\s*(.*)\n/.exec(text)?.[1] ?? "";
      const sans = san === "" ? [] : san.split(", ");
      const wantSans = [
        ...spec.dnsNames.map((n) => `DNS:${n}`),
        ...spec.ipAddresses.map((ip) => `IP Address:${ip}`),
      ];
      expect(sans.sort()).toEqual(wantSans.sort());

      const certKey = openssl("x509", "-in", cert, "-noout", "-pubkey");
      const ownKey = openssl("pkey", "-in", key, "-pubout");
      expect(certKey).toBe(ownKey);
    }
  });

  it("names the identities RBAC and the Node authorizer expect", () => {
    const subject = (id: string) =>
      openssl("x509", "-in", written[id].cert, "-noout", "-subject", "-nameopt", "RFC2253").trim();
    expect(subject("admin")).toBe("subject=CN=admin,O=system:masters");
    expect(subject("kube-controller-manager")).toBe("subject=CN=system:kube-controller-manager");
    expect(subject("kube-scheduler")).toBe("subject=CN=system:kube-scheduler");
    expect(subject("kube-proxy")).toBe("subject=CN=system:kube-proxy,O=system:node-proxier");
    expect(subject("kubelet-worker1")).toBe("subject=CN=system:node:worker1,O=system:nodes");
    expect(subject("kube-apiserver-kubelet-client")).toBe(
      "subject=CN=kube-apiserver-kubelet-client",
    );
    expect(subject("front-proxy-client")).toBe("subject=CN=front-proxy-client");
  });

  it("lets every client reach the API server under each of its names", () => {
    const cert = written["kube-apiserver"].cert;
    for (const host of [
      "kubernetes",
      "kubernetes.default.svc.cluster.local",
      "control1.hardway.internal",
      "control2",
    ]) {
      expect(openssl("x509", "-in", cert, "-noout", "-checkhost", host)).toMatch(/does match/);
    }
    for (const ip of [
      plan.apiVip,
      plan.apiServiceIp,
      "127.0.0.1",
      ...plan.controls.map((c) => c.ip),
    ]) {
      expect(openssl("x509", "-in", cert, "-noout", "-checkip", ip)).toMatch(/does match/);
    }
    expect(openssl("x509", "-in", cert, "-noout", "-checkip", plan.workers[0].ip)).toMatch(
      /NOT match/,
    );
  });

  it("keeps the three trust domains apart", () => {
    const verify = (ca: string, cert: string) => {
      try {
        return openssl("verify", "-CAfile", written[ca].cert, written[cert].cert);
      } catch (err) {
        return (
          String((err as { stdout?: string }).stdout) + String((err as { stderr?: string }).stderr)
        );
      }
    };
    expect(verify("kubernetes-ca", "kube-apiserver-etcd-client")).toMatch(
      /unable to get local issuer/,
    );
    expect(verify("etcd-ca", "admin")).toMatch(/unable to get local issuer/);
    expect(verify("kubernetes-ca", "front-proxy-client")).toMatch(/unable to get local issuer/);
  });

  it("expires after the configured validity, and the expiry is reported", async () => {
    const expiry = (await unwrap(pki.expiry)).value;
    expect(Object.keys(expiry).sort()).toEqual(
      [...Object.keys(pki.cas), ...pki.specs.map((s) => s.id)].sort(),
    );
    const end = new Date(
      openssl("x509", "-in", written.admin.cert, "-noout", "-enddate").split("=")[1],
    );
    const days = (end.getTime() - Date.now()) / (24 * 3600 * 1000);
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThan(366);
    expect(Math.abs(new Date(expiry.admin).getTime() - end.getTime())).toBeLessThan(
      2 * 24 * 3600 * 1000,
    );
  });

  it("asks the provider for renewal before expiry", () => {
    const certs = resources.filter(
      (r) => r.type === "pulumi-nodejs:dynamic/pki:Certificate" && !r.inputs.isCa,
    );
    expect(certs.length).toBe(pki.specs.length);
    for (const r of certs) {
      expect(r.inputs.earlyRenewalHours).toBe(720);
      expect(r.inputs.validityHours).toBe(8760);
    }
  });
});

describe("secrets", () => {
  it("marks every private key and everything embedding one as secret", async () => {
    for (const [id, files] of Object.entries(written)) {
      expect(`${id}: ${files.keySecret}`).toBe(`${id}: true`);
    }
    expect((await unwrap(pki.serviceAccount.privateKeyPem)).secret).toBe(true);
    expect((await unwrap(pki.ssh.privateKey)).secret).toBe(true);
    expect((await unwrap(pki.encryptionConfig)).secret).toBe(true);
    const { admin, controllerManager, scheduler, kubeProxy, kubelets } = pki.kubeconfigs;
    for (const kubeconfig of [
      admin,
      controllerManager,
      scheduler,
      kubeProxy,
      ...Object.values(kubelets),
    ]) {
      expect((await unwrap(kubeconfig)).secret).toBe(true);
    }
  });
});

describe("kubeconfigs", () => {
  async function view(kubeconfig: pulumi.Output<string>) {
    const file = path.join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
    fs.writeFileSync(file, (await unwrap(kubeconfig)).value);
    const json = execFileSync(
      "kubectl",
      ["config", "view", "--kubeconfig", file, "--raw", "-o", "json"],
      {
        encoding: "utf8",
      },
    );
    return JSON.parse(json) as {
      clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
      users: {
        name: string;
        user: { "client-certificate-data": string; "client-key-data": string };
      }[];
      "current-context": string;
    };
  }
  const decode = (b64: string) => Buffer.from(b64, "base64").toString();
  const cases: [string, () => pulumi.Output<string>, string, string][] = [
    ["admin", () => pki.kubeconfigs.admin, "admin", "https://192.168.234.20:6443"],
    [
      "kube-controller-manager",
      () => pki.kubeconfigs.controllerManager,
      "kube-controller-manager",
      "https://127.0.0.1:6443",
    ],
    ["kube-scheduler", () => pki.kubeconfigs.scheduler, "kube-scheduler", "https://127.0.0.1:6443"],
    ["kube-proxy", () => pki.kubeconfigs.kubeProxy, "kube-proxy", "https://192.168.234.20:6443"],
    [
      "kubelet on worker2",
      () => pki.kubeconfigs.kubelets.worker2,
      "kubelet-worker2",
      "https://192.168.234.20:6443",
    ],
    [
      "kubelet on control0",
      () => pki.kubeconfigs.kubelets.control0,
      "kubelet-control0",
      "https://192.168.234.20:6443",
    ],
  ];
  it.each(cases)(
    "the %s kubeconfig loads in kubectl and embeds the right CA and client",
    async (_n, get, certId, server) => {
      const config = await view(get());
      expect(config.clusters).toHaveLength(1);
      expect(config.clusters[0].cluster.server).toBe(server);
      expect(decode(config.clusters[0].cluster["certificate-authority-data"])).toBe(
        fs.readFileSync(written["kubernetes-ca"].cert, "utf8"),
      );
      expect(decode(config.users[0].user["client-certificate-data"])).toBe(
        fs.readFileSync(written[certId].cert, "utf8"),
      );
      expect(decode(config.users[0].user["client-key-data"])).toBe(
        fs.readFileSync(written[certId].key, "utf8"),
      );
      expect(config["current-context"]).toContain("@hardway-test");
    },
  );

  it("exists for every kubelet node and no other", () => {
    expect(Object.keys(pki.kubeconfigs.kubelets).sort()).toEqual(
      plan.kubeletNodes.map((n) => n.name).sort(),
    );
  });
});

describe("the service-account key, encryption config and SSH key", () => {
  it("gives the controller-manager a private key whose public half the API servers get", async () => {
    const priv = path.join(dir, "sa.key");
    fs.writeFileSync(priv, (await unwrap(pki.serviceAccount.privateKeyPem)).value);
    expect(openssl("pkey", "-in", priv, "-pubout")).toBe(
      (await unwrap(pki.serviceAccount.publicKeyPem)).value,
    );
  });

  it("encrypts Secrets with a fresh 32-byte secretbox key and keeps identity as fallback", async () => {
    const config = parse((await unwrap(pki.encryptionConfig)).value) as {
      kind: string;
      resources: {
        resources: string[];
        providers: Record<string, { keys?: { name: string; secret: string }[] }>[];
      }[];
    };
    expect(config.kind).toBe("EncryptionConfiguration");
    const providers = config.resources[0].providers;
    expect(config.resources[0].resources).toEqual(["secrets"]);
    expect(Object.keys(providers[0])).toEqual(["secretbox"]);
    expect(Buffer.from(providers[0].secretbox.keys![0].secret, "base64")).toHaveLength(32);
    expect(providers[1]).toEqual({ identity: {} });
    expect(ENCRYPTED_VALUE_PREFIX).toBe(
      `k8s:enc:secretbox:v1:${providers[0].secretbox.keys![0].name}:`,
    );
  });

  it("produces an ED25519 key pair that ssh-keygen accepts", async () => {
    const keyFile = path.join(dir, "id_ed25519");
    fs.writeFileSync(keyFile, (await unwrap(pki.ssh.privateKey)).value, { mode: 0o600 });
    const derived = execFileSync("ssh-keygen", ["-y", "-f", keyFile], { encoding: "utf8" }).trim();
    expect(derived).toBe((await unwrap(pki.ssh.publicKey)).value.trim());
    expect(derived).toMatch(/^ssh-ed25519 /);
  });
});
