import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { parse, stringify } from "yaml";
import { bridgeConfList, renderBridgeConfList } from "../../components/kubernetes/cni";
import {
  API_SHUTDOWN_DELAY_SECONDS,
  apiServerCommand,
  apiServerUnit,
  EMULATED_API_REQUEST_TIMEOUT_SECONDS,
  EMULATED_ETCD_CHECK_TIMEOUT_SECONDS,
  EMULATED_LEADER_ELECTION,
  electsLeader,
  controllerManagerCommand,
  renderAuditPolicy,
  renderAuthenticationConfig,
  renderSchedulerConfiguration,
  schedulerCommand,
} from "../../components/kubernetes/controlPlane";
import {
  CONTROL_PLANE_TAINT,
  renderKubeletConfiguration,
  kubeletCommand,
} from "../../components/kubernetes/kubelet";
import { renderKubeProxyConfiguration } from "../../components/kubernetes/kubeProxy";
import {
  EMULATED_ETCD_TIMING,
  etcdCommand,
  etcdJoinCommand,
  etcdPromoteCommand,
  renderEtcdMembers,
} from "../../components/kubernetes/etcd";
import { CA_FILES, certFiles, NODE_PATHS } from "../../components/kubernetes/paths";
import {
  renderContainerdConfig,
  renderCrictlConfig,
  renderCrioDropIn,
  SANDBOX_IMAGE,
  renderRegistriesConf,
} from "../../components/kubernetes/runtime";
import { renderEncryptionConfig } from "../../components/pki/encryption";
import { renderKubeconfig } from "../../components/pki/kubeconfig";
import { artifacts } from "../../components/kubernetes/artifacts";
import { defaultVersions } from "../../components/config/defaults";
import { containerdFromMirror, kubernetesBinaryFromMirror } from "../e2e/mirror";
import { itIfAvailable, missingPrograms } from "../harness/prerequisites";
import { config, parseToml, plan, run } from "./fixtures";

const p = plan();
const single = plan({ controlPlanes: 1 });

/** The `--name=value` flags of a command line as a map. */
function flagMap(command: readonly string[]): Map<string, string> {
  return new Map(
    command.slice(1).map((a) => [a.slice(2, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]),
  );
}

/** A parsed YAML or JSON document, typed only as far as the assertions need. */
function doc(text: string): Record<string, unknown> {
  return parse(text) as Record<string, unknown>;
}

describe("etcd flags", () => {
  it.each([1, 3, 5] as const)(
    "plan all %i members, and leave how to join to etcd-join.sh",
    (controlPlanes) => {
      const q = plan({ controlPlanes });
      for (const member of q.controls) {
        const args = { member, members: q.controls, clusterToken: "hardway" };
        const f = flagMap(etcdCommand(args));
        // Set by etcd-join.sh through the environment, never as flags (which would win).
        expect(f.has("initial-cluster")).toBe(false);
        expect(f.has("initial-cluster-state")).toBe(false);
        const join = etcdJoinCommand(args);
        const option = (name: string) =>
          join.flatMap((word, i) => (join[i - 1] === name ? [word] : []));
        // The other members are in the members file, never on a command line: another number of
        // members changes that file alone, and no unit.
        expect(option("--members")).toEqual(["/etc/etcd/members"]);
        for (const other of q.controls.filter((c) => c !== member)) {
          expect(join.join(" ")).not.toContain(`${other.ip}:`);
        }
        expect(renderEtcdMembers(q.controls).split("\n").slice(1, -1)).toEqual(
          q.controls.map((c) => `${c.name} https://${c.ip}:2380 https://${c.ip}:2379`),
        );
        expect(option("--name")).toEqual([member.name]);
        const promote = etcdPromoteCommand(args);
        expect(promote.slice(0, 3)).toEqual([
          "/bin/bash",
          "/usr/local/lib/hardway/etcd-member.sh",
          "promote",
        ]);
        expect(promote).toContain("/etc/etcd/members");
        expect(f.get("listen-client-urls")).toBe(
          `https://${member.ip}:2379,https://127.0.0.1:2379`,
        );
        expect(f.get("client-cert-auth")).toBe("true");
        expect(f.get("peer-client-cert-auth")).toBe("true");
        expect(f.get("trusted-ca-file")).toBe(CA_FILES["etcd-ca"].cert);
        expect(f.get("data-dir")).toBe("/var/lib/etcd");
      }
    },
  );

  it("keeps etcd's Raft timing unless told, and slows it for emulated guests", () => {
    const args = { member: p.controls[0], members: p.controls, clusterToken: "t" };
    const plain = flagMap(etcdCommand(args));
    expect(plain.has("heartbeat-interval")).toBe(false);
    expect(plain.has("election-timeout")).toBe(false);
    const slow = flagMap(etcdCommand({ ...args, timing: EMULATED_ETCD_TIMING }));
    expect(slow.get("heartbeat-interval")).toBe("500");
    expect(slow.get("election-timeout")).toBe("5000");
    // etcd's guide: an election timeout of about ten heartbeats.
    expect(
      EMULATED_ETCD_TIMING.electionTimeoutMs / EMULATED_ETCD_TIMING.heartbeatIntervalMs,
    ).toBeGreaterThanOrEqual(5);
  });

  it("refuses an even member count and a member outside the cluster", () => {
    expect(() =>
      etcdCommand({ member: p.controls[0], members: p.controls.slice(0, 2), clusterToken: "t" }),
    ).toThrow(/odd/);
    expect(() =>
      etcdCommand({ member: p.workers[0], members: p.controls, clusterToken: "t" }),
    ).toThrow(/not one of/);
  });
});

describe("kube-apiserver flags", () => {
  const f = flagMap(apiServerCommand({ plan: p, node: p.controls[1] }));

  it("keeps the server's own request timeout unless one is given (emulated control nodes)", () => {
    expect(f.has("request-timeout")).toBe(false);
    const slow = flagMap(
      apiServerCommand({ plan: p, node: p.controls[1], requestTimeoutSeconds: 300 }),
    );
    expect(slow.get("request-timeout")).toBe("300s");
  });

  it("serves on all addresses on 6443 and advertises the node's own IP", () => {
    expect(f.get("bind-address")).toBe("0.0.0.0");
    expect(f.get("secure-port")).toBe("6443");
    expect(f.get("advertise-address")).toBe(p.controls[1].ip);
  });

  it("authorizes with Node and RBAC and admits with NodeRestriction", () => {
    expect(f.get("authorization-mode")).toBe("Node,RBAC");
    expect(f.get("enable-admission-plugins")?.split(",")).toContain("NodeRestriction");
  });

  it("talks to every etcd member with its own client certificate and the etcd CA", () => {
    expect(f.get("etcd-servers")).toBe(p.controls.map((c) => `https://${c.ip}:2379`).join(","));
    expect(f.get("etcd-cafile")).toBe(CA_FILES["etcd-ca"].cert);
    expect(f.get("etcd-certfile")).toBe(certFiles("kube-apiserver-etcd-client").cert);
  });

  it("issues service-account tokens for the VIP", () => {
    expect(f.get("service-account-issuer")).toBe(`https://${p.apiVip}:6443`);
    expect(f.get("service-account-key-file")).toBe(NODE_PATHS.serviceAccountPublicKey);
    expect(f.get("service-account-signing-key-file")).toBe(NODE_PATHS.serviceAccountPrivateKey);
    expect(f.get("service-cluster-ip-range")).toBe(p.serviceCidr);
  });

  it("configures encryption at rest, auditing, kubelet client and front proxy", () => {
    expect(f.get("encryption-provider-config")).toBe(NODE_PATHS.encryptionConfig);
    expect(f.get("audit-policy-file")).toBe(NODE_PATHS.auditPolicy);
    expect(f.get("audit-log-path")).toBe(NODE_PATHS.auditLog);
    for (const name of ["audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize"]) {
      expect(Number(f.get(name))).toBeGreaterThan(0);
    }
    expect(f.get("kubelet-client-certificate")).toBe(
      certFiles("kube-apiserver-kubelet-client").cert,
    );
    expect(f.get("kubelet-certificate-authority")).toBe(CA_FILES["kubernetes-ca"].cert);
    expect(f.get("proxy-client-cert-file")).toBe(certFiles("front-proxy-client").cert);
    expect(f.get("requestheader-client-ca-file")).toBe(CA_FILES["front-proxy-ca"].cert);
    expect(f.get("requestheader-allowed-names")).toBe("front-proxy-client");
    expect(f.get("requestheader-extra-headers-prefix")).toBe("X-Remote-Extra-");
    expect(f.get("client-ca-file")).toBe(CA_FILES["kubernetes-ca"].cert);
    expect(f.get("allow-privileged")).toBe("true");
  });

  it("answers anonymous requests on the health endpoints only and serves no profiles", () => {
    expect(f.get("authentication-config")).toBe(NODE_PATHS.authenticationConfig);
    expect(f.has("anonymous-auth")).toBe(false); // the two flags exclude each other
    expect(doc(renderAuthenticationConfig())).toEqual({
      apiVersion: "apiserver.config.k8s.io/v1",
      kind: "AuthenticationConfiguration",
      anonymous: {
        enabled: true,
        conditions: [{ path: "/healthz" }, { path: "/livez" }, { path: "/readyz" }],
      },
    });
    expect(f.get("profiling")).toBe("false");
  });

  it("drains before it stops: /readyz fails first, systemd waits for the delay", () => {
    expect(f.get("shutdown-delay-duration")).toBe(`${API_SHUTDOWN_DELAY_SECONDS}s`);
    // Then 429 with Retry-After, and 2 s for the connections, not the request timeout
    // (apiServerShutdown.test.ts stops a real server with these flags).
    expect(f.get("shutdown-send-retry-after")).toBe("true");
    const unit = apiServerUnit({ plan: p, node: p.controls[1] });
    expect(unit.service.timeoutStopSec).toBeGreaterThan(API_SHUTDOWN_DELAY_SECONDS + 30);
  });
});

describe("kube-controller-manager and kube-scheduler", () => {
  it("signs with the cluster CA, uses per-controller credentials and leaves pod CIDRs to the plan", () => {
    const f = flagMap(controllerManagerCommand({ plan: p }));
    expect(f.get("cluster-signing-cert-file")).toBe(CA_FILES["kubernetes-ca"].cert);
    expect(f.get("cluster-signing-key-file")).toBe(CA_FILES["kubernetes-ca"].key);
    expect(f.get("service-account-private-key-file")).toBe(NODE_PATHS.serviceAccountPrivateKey);
    expect(f.get("root-ca-file")).toBe(CA_FILES["kubernetes-ca"].cert);
    expect(f.get("use-service-account-credentials")).toBe("true");
    expect(f.get("leader-elect")).toBe("true");
    expect(flagMap(controllerManagerCommand({ plan: single })).get("leader-elect")).toBe("false");
    expect(f.get("allocate-node-cidrs")).toBe("false");
    expect(f.get("cluster-cidr")).toBe(p.clusterCidr);
    expect(f.get("service-cluster-ip-range")).toBe(p.serviceCidr);
  });

  it("reads a KubeSchedulerConfiguration with leader election and no profiling endpoint", () => {
    expect(flagMap(schedulerCommand()).get("config")).toBe(NODE_PATHS.schedulerConfig);
    expect(doc(renderSchedulerConfiguration({ plan: p }))).toEqual({
      apiVersion: "kubescheduler.config.k8s.io/v1",
      kind: "KubeSchedulerConfiguration",
      clientConnection: { kubeconfig: NODE_PATHS.kubeconfigs.scheduler },
      leaderElection: { leaderElect: true },
      enableProfiling: false,
    });
  });

  it("elects no leader with a single control plane, whatever the timings", () => {
    const timed = { plan: single, leaderElection: EMULATED_LEADER_ELECTION };
    expect(electsLeader(single)).toBe(false);
    expect(flagMap(controllerManagerCommand(timed)).has("leader-elect-renew-deadline")).toBe(false);
    expect(doc(renderSchedulerConfiguration(timed)).leaderElection).toEqual({ leaderElect: false });
  });
});

describe("emulated control nodes' timings, read by the pinned binaries", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-leader-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const binary = (name: string) => kubernetesBinaryFromMirror(defaultVersions.kubernetes, name);
  const missing = (name: string) => {
    const found = binary(name);
    return "missing" in found ? `kube ${name}: ${found.missing}` : undefined;
  };
  const pathOf = (name: string) => {
    const found = binary(name);
    return "path" in found ? found.path : name;
  };

  it("gives the leader minutes, not seconds, and keeps the defaults elsewhere", () => {
    const f = flagMap(
      controllerManagerCommand({ plan: p, leaderElection: EMULATED_LEADER_ELECTION }),
    );
    expect(f.get("leader-elect-renew-deadline")).toBe("120s");
    expect(flagMap(controllerManagerCommand({ plan: p })).has("leader-elect-renew-deadline")).toBe(
      false,
    );
    expect(
      doc(renderSchedulerConfiguration({ plan: p, leaderElection: EMULATED_LEADER_ELECTION }))
        .leaderElection,
    ).toEqual({
      leaderElect: true,
      leaseDuration: "180s",
      renewDeadline: "120s",
      retryPeriod: "10s",
    });
  });

  itIfAvailable(
    missing("kube-scheduler"),
    "kube-scheduler accepts the configuration (its own validation: renew deadline < lease)",
    () => {
      // Never dialled: --write-config-to exits once the configuration is loaded and validated.
      const kubeconfig = path.join(dir, "scheduler.conf");
      fs.writeFileSync(
        kubeconfig,
        stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1" } }],
          users: [{ name: "u", user: { token: "unused" } }],
          contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
          "current-context": "c",
        }),
      );
      const config = path.join(dir, "scheduler.yaml");
      const written = path.join(dir, "effective.yaml");
      const rendered = doc(
        renderSchedulerConfiguration({ plan: p, leaderElection: EMULATED_LEADER_ELECTION }),
      );
      fs.writeFileSync(config, stringify({ ...rendered, clientConnection: { kubeconfig } }));
      const result = spawnSync(
        pathOf("kube-scheduler"),
        ["--config", config, "--write-config-to", written],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(result.stderr).not.toContain("command failed");
      expect(result.status).toBe(0);
      const effective = doc(fs.readFileSync(written, "utf8")) as {
        leaderElection: Record<string, unknown>;
      };
      expect(effective.leaderElection).toMatchObject({
        leaderElect: true,
        leaseDuration: "3m0s",
        renewDeadline: "2m0s",
        retryPeriod: "10s",
      });
    },
  );

  itIfAvailable(
    missing("kube-apiserver"),
    "kube-apiserver parses every rendered flag of an emulated control node",
    () => {
      const [, ...args] = apiServerCommand({
        plan: p,
        node: p.controls[0],
        requestTimeoutSeconds: EMULATED_API_REQUEST_TIMEOUT_SECONDS,
        etcdCheckTimeoutSeconds: EMULATED_ETCD_CHECK_TIMEOUT_SECONDS,
      });
      expect(args).toEqual(
        expect.arrayContaining(["--etcd-readycheck-timeout=10s", "--etcd-healthcheck-timeout=10s"]),
      );
      const ok = spawnSync(pathOf("kube-apiserver"), [...args, "--version"], {
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(ok.stdout).toContain(`Kubernetes v${defaultVersions.kubernetes}`);
      expect(ok.status).toBe(0);
    },
  );

  itIfAvailable(
    missing("kube-controller-manager"),
    "kube-controller-manager parses every rendered flag, and refuses an unknown one",
    () => {
      const [bin, ...args] = controllerManagerCommand({
        plan: p,
        leaderElection: EMULATED_LEADER_ELECTION,
      });
      expect(bin).toBe("/usr/local/bin/kube-controller-manager");
      const ok = spawnSync(pathOf("kube-controller-manager"), [...args, "--version"], {
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(ok.stdout).toContain(`Kubernetes v${defaultVersions.kubernetes}`);
      expect(ok.status).toBe(0);
      const bad = spawnSync(
        pathOf("kube-controller-manager"),
        [...args, "--leader-elect-renew-deadline=soon", "--version"],
        {
          encoding: "utf8",
          timeout: 60_000,
        },
      );
      expect(bad.status).not.toBe(0);
    },
  );
});

interface AuditRule {
  level: string;
  resources?: { resources: string[] }[];
}

describe("audit policy", () => {
  it("is an audit.k8s.io/v1 Policy whose rules use only valid levels and end with a catch-all", () => {
    const policy = doc(renderAuditPolicy()) as {
      apiVersion: string;
      kind: string;
      rules: AuditRule[];
    };
    expect(policy.apiVersion).toBe("audit.k8s.io/v1");
    expect(policy.kind).toBe("Policy");
    const levels = policy.rules.map((r) => r.level);
    expect(
      levels.every((l) => ["None", "Metadata", "Request", "RequestResponse"].includes(l)),
    ).toBe(true);
    expect(policy.rules[policy.rules.length - 1]).toEqual({ level: "Metadata" });
    const secrets = policy.rules.find((r) =>
      r.resources?.some((g) => g.resources.includes("secrets")),
    );
    expect(secrets?.level).toBe("Metadata");
  });
});

describe("KubeletConfiguration", () => {
  it("authenticates by webhook and client certificate only, and authorizes by webhook", () => {
    const c = doc(
      renderKubeletConfiguration({
        plan: p,
        node: p.workers[0],
        runtime: "containerd",
        cni: "bridge",
      }),
    );
    expect(c.apiVersion).toBe("kubelet.config.k8s.io/v1beta1");
    expect(c.kind).toBe("KubeletConfiguration");
    expect(c.authentication).toEqual({
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: CA_FILES["kubernetes-ca"].cert },
    });
    expect(c.authorization).toEqual({ mode: "Webhook" });
    expect(c.cgroupDriver).toBe("systemd");
    expect(c.clusterDNS).toEqual([p.clusterDnsIp]);
    expect(c.clusterDomain).toBe("cluster.local");
    expect(c.tlsCertFile).toBe(certFiles("kubelet-worker0").cert);
    expect(c.containerRuntimeEndpoint).toBe("unix:///run/containerd/containerd.sock");
    expect(c.podCIDR).toBe(p.workers[0].podCidr);
    // A link the unit points at the node's real file (tests/kubernetes/resolvConf.mountns.test.ts).
    expect(c.resolvConf).toBe(NODE_PATHS.kubeletResolvConf);
    expect(c.registerWithTaints).toBeUndefined();
  });

  it("taints control nodes, follows the runtime and leaves podCIDR out with Cilium", () => {
    const c = doc(
      renderKubeletConfiguration({ plan: p, node: p.controls[0], runtime: "cri-o", cni: "cilium" }),
    );
    expect(c.registerWithTaints).toEqual([CONTROL_PLANE_TAINT]);
    expect(c.containerRuntimeEndpoint).toBe("unix:///var/run/crio/crio.sock");
    expect(c.podCIDR).toBeUndefined();
  });

  it("registers the node under the name its certificate carries", () => {
    const f = flagMap(
      kubeletCommand({ plan: p, node: p.workers[1], runtime: "containerd", cni: "bridge" }),
    );
    expect(f.get("hostname-override")).toBe("worker1");
    expect(f.get("node-ip")).toBe(p.workers[1].ip);
    expect(f.get("kubeconfig")).toBe(NODE_PATHS.kubeconfigs.kubelet);
  });

  it("refuses the gateway, which runs no kubelet", () => {
    expect(() =>
      renderKubeletConfiguration({
        plan: p,
        node: p.gateway,
        runtime: "containerd",
        cni: "bridge",
      }),
    ).toThrow(/gateway runs no kubelet/);
  });
});

describe("KubeProxyConfiguration", () => {
  it("runs iptables mode for the cluster CIDR with its kubeconfig", () => {
    expect(doc(renderKubeProxyConfiguration(p, p.workers[2]))).toEqual({
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      clientConnection: { kubeconfig: NODE_PATHS.kubeconfigs.kubeProxy },
      mode: "iptables",
      clusterCIDR: p.clusterCidr,
      hostnameOverride: "worker2",
    });
  });
});

describe("container runtime configs", () => {
  it("containerd: the config holds the CRI runtime, runc with systemd cgroups and the pinned sandbox", () => {
    const c = parseToml(renderContainerdConfig()) as {
      version: number;
      plugins: Record<string, Record<string, unknown>>;
    };
    expect(c.version).toBe(4);
    const runtime = c.plugins["io.containerd.cri.v1.runtime"] as {
      containerd: {
        runtimes: { runc: { runtime_type: string; options: Record<string, unknown> } };
      };
    };
    expect(runtime.containerd.runtimes.runc.runtime_type).toBe("io.containerd.runc.v2");
    expect(runtime.containerd.runtimes.runc.options.SystemdCgroup).toBe(true);
    expect(c.plugins["io.containerd.cri.v1.images"]).toEqual({
      pinned_images: { sandbox: SANDBOX_IMAGE },
      registry: { config_path: "/etc/containerd/certs.d" },
    });
  });

  const containerdDir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-containerd-"));
  afterAll(() => fs.rmSync(containerdDir, { recursive: true, force: true }));
  const containerd = containerdFromMirror(defaultVersions.containerd, containerdDir);
  const containerdBin = "dir" in containerd ? containerd.dir : "";
  itIfAvailable(
    "missing" in containerd
      ? `containerd ${defaultVersions.containerd}: ${containerd.missing}`
      : undefined,
    "containerd: the pinned containerd reads it as its own schema, with no migration",
    () => {
      const file = path.join(containerdDir, "config.toml");
      fs.writeFileSync(file, renderContainerdConfig());
      const dump = spawnSync(
        path.join(containerdBin, "containerd"),
        ["--config", file, "config", "dump"],
        {
          encoding: "utf8",
        },
      );
      expect(dump.status).toBe(0);
      expect(dump.stderr).not.toContain("migrated");
      expect(dump.stdout).toMatch(/^version = 4$/m);
      expect(dump.stdout).toContain(`sandbox = '${SANDBOX_IMAGE}'`);
      expect(dump.stdout).toMatch(/SystemdCgroup = true/);
      expect(dump.stdout).toContain("config_path = '/etc/containerd/certs.d'");
    },
  );

  it("CRI-O resolves short image names through the registries the bundle's installer configures", () => {
    expect(parseToml(renderRegistriesConf())).toEqual({
      "unqualified-search-registries": ["docker.io", "quay.io"],
      "short-name-mode": "permissive",
    });
  });

  it("CRI-O drop-in: systemd cgroup manager, the bundle's runtimes by path, the shared CNI dirs", () => {
    const handler = (binary: string) => ({
      runtime_path: `/usr/libexec/crio/${binary}`,
      runtime_type: "oci",
      runtime_root: `/run/${binary}`,
      monitor_path: "/usr/libexec/crio/conmon",
    });
    expect(parseToml(renderCrioDropIn())).toEqual({
      crio: {
        runtime: {
          cgroup_manager: "systemd",
          default_runtime: "crun",
          pinns_path: "/usr/local/bin/pinns",
          runtimes: { crun: handler("crun"), runc: handler("runc") },
        },
        image: { pause_image: SANDBOX_IMAGE },
        network: { network_dir: "/etc/cni/net.d", plugin_dirs: ["/opt/cni/bin"] },
      },
    });
  });

  it("every binary the CRI-O drop-in names is one the CRI-O bundle installs", () => {
    const bundle = artifacts(config({ containerRuntime: "cri-o" })).find((a) => a.name === "cri-o");
    const installed = new Set(bundle?.binaries.map((b) => b.installPath));
    const text = renderCrioDropIn();
    const named = [...text.matchAll(/"(\/usr\/[^"]+)"/g)].map((m) => m[1]);
    expect(named.length).toBeGreaterThan(0);
    for (const binary of named) {
      expect(installed).toContain(binary);
    }
  });

  it("crictl points at the configured runtime", () => {
    expect(doc(renderCrictlConfig("containerd"))["runtime-endpoint"]).toBe(
      "unix:///run/containerd/containerd.sock",
    );
    expect(doc(renderCrictlConfig("cri-o"))["image-endpoint"]).toBe(
      "unix:///var/run/crio/crio.sock",
    );
  });
});

describe("bridge CNI conflist", () => {
  it("chains bridge (host-local on the node's pod CIDR, default route) and portmap", () => {
    const conf = doc(renderBridgeConfList(p.workers[1])) as {
      cniVersion: string;
      plugins: Record<string, unknown>[];
    };
    expect(conf.cniVersion).toBe("1.0.0");
    expect(conf.plugins.map((pl) => pl.type)).toEqual(["bridge", "portmap"]);
    // Pods keep their own address on the way to other nodes: no NAT on the node.
    expect(conf.plugins[0].ipMasq).toBe(false);
    expect(conf.plugins[0].ipam).toEqual({
      type: "host-local",
      ranges: [[{ subnet: p.workers[1].podCidr }]],
      routes: [{ dst: "0.0.0.0/0" }],
    });
    expect(conf.plugins[1].capabilities).toEqual({ portMappings: true });
  });

  it("gives every node a distinct subnet", () => {
    const subnets = p.kubeletNodes.map(
      (n) =>
        (bridgeConfList(n).plugins as { ipam: { ranges: { subnet: string }[][] } }[])[0].ipam
          .ranges[0][0].subnet,
    );
    expect(new Set(subnets).size).toBe(p.kubeletNodes.length);
  });
});

describe("kubeconfig and EncryptionConfiguration", () => {
  itIfAvailable(
    missingPrograms(["kubectl"]),
    "kubectl reads the kubeconfig the components use",
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-kubeconfig-"));
      try {
        const file = path.join(dir, "scheduler.conf");
        fs.writeFileSync(
          file,
          renderKubeconfig({
            cluster: "hardway",
            server: p.apiServerUrl,
            caCertPem: "ca",
            user: "system:kube-scheduler",
            clientCertPem: "cert",
            clientKeyPem: "key",
          }),
        );
        const view = doc(
          run("kubectl", ["config", "view", "--kubeconfig", file, "--minify", "-o", "json"]),
        );
        expect(view.clusters).toMatchObject([{ cluster: { server: `https://${p.apiVip}:6443` } }]);
        expect(view["current-context"]).toBe("system:kube-scheduler@hardway");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it("the EncryptionConfiguration parses with secretbox first and identity last", () => {
    const c = doc(renderEncryptionConfig(Buffer.alloc(32, 7).toString("base64")));
    expect(c.kind).toBe("EncryptionConfiguration");
    const [secrets] = c.resources as { providers: Record<string, unknown>[] }[];
    expect(Object.keys(secrets.providers[0])).toEqual(["secretbox"]);
    expect(secrets.providers[1]).toEqual({ identity: {} });
  });
});
