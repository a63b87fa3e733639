import { ENCRYPTED_VALUE_PREFIX } from "../../components/pki/encryption";
import {
  ALL_CHECKS,
  SmokeCheck,
  clusterDns,
  etcdGetCommand,
  inPool,
  loadBalancer,
  nodesReady,
  persistentVolume,
  podToPod,
  resolvedAddresses,
  runSmoke,
  secretEncryption,
  twoNodes,
} from "./checks";
import { FAKE_NODES, FakeCluster, fakeContext } from "./fakeCluster";

async function verdict(
  check: SmokeCheck,
  cluster: FakeCluster,
): Promise<{ passed: boolean; detail: string }> {
  try {
    return { passed: true, detail: await check.run(cluster, fakeContext()) };
  } catch (err) {
    return { passed: false, detail: (err as Error).message };
  }
}

/** Everything a check created is gone afterwards, whatever its verdict. */
function expectCleanedUp(cluster: FakeCluster): void {
  expect(cluster.applied.length).toBeGreaterThan(0);
  expect(cluster.liveObjects()).toEqual([]);
}

describe("each check passes on a healthy cluster", () => {
  it.each(ALL_CHECKS.map((c) => [c.name, c] as const))("%s", async (_name, check) => {
    const cluster = new FakeCluster();
    const result = await verdict(check, cluster);
    expect(result).toEqual({ passed: true, detail: expect.any(String) as string });
    if (check !== nodesReady) {
      expectCleanedUp(cluster);
    }
  });
});

describe("nodes-ready", () => {
  it("fails when a node is NotReady and names it with the kubelet's reason", async () => {
    const cluster = new FakeCluster();
    cluster.nodes[2] = {
      name: "worker1",
      ready: false,
      readyDetail: "KubeletNotReady: cni not ready",
    };
    const result = await verdict(nodesReady, cluster);
    expect(result.passed).toBe(false);
    expect(result.detail).toBe("worker1 is NotReady (KubeletNotReady: cni not ready)");
  });

  it("fails when a node of the stack never registered", async () => {
    const cluster = new FakeCluster();
    cluster.nodes = cluster.nodes.filter((n) => n.name !== "control0");
    expect(await verdict(nodesReady, cluster)).toEqual({
      passed: false,
      detail: "control0 is not registered",
    });
  });

  it("does not expect the gateway, which runs no kubelet", async () => {
    const result = await verdict(nodesReady, new FakeCluster());
    expect(result.detail).toBe("3 nodes Ready: control0, worker0, worker1");
  });
});

describe("cluster-dns", () => {
  it("fails when kubernetes.default resolves to something other than the API Service", async () => {
    const cluster = new FakeCluster();
    cluster.dnsAnswer = "10.32.0.99";
    const result = await verdict(clusterDns, cluster);
    expect(result.passed).toBe(false);
    expect(result.detail).toMatch(/resolved to \[10\.32\.0\.99\], expected 10\.32\.0\.1/);
    expectCleanedUp(cluster);
  });

  it("fails after the bounded wait when the pod never runs, saying why", async () => {
    const cluster = new FakeCluster();
    cluster.podWaitingReason = "ImagePullBackOff";
    const result = await verdict(clusterDns, cluster);
    expect(result).toEqual({
      passed: false,
      detail: "pod smoke-dns: still Pending (ImagePullBackOff) after 0.1s",
    });
    expectCleanedUp(cluster);
  });
});

describe("pod-to-pod", () => {
  it("fails when pods on different nodes cannot reach each other", async () => {
    const cluster = new FakeCluster();
    cluster.podNetworkWorks = false;
    const result = await verdict(podToPod, cluster);
    expect(result.passed).toBe(false);
    expect(result.detail).toMatch(
      /smoke-peer-a \(worker0\) could not reach smoke-peer-b \(worker1\)/,
    );
    expectCleanedUp(cluster);
  });

  it("pins the two pods to two workers before falling back to control nodes", () => {
    expect(twoNodes(FAKE_NODES)).toEqual(["worker0", "worker1"]);
    const oneWorker = Object.fromEntries(
      Object.entries(FAKE_NODES).filter(([name]) => name !== "worker1"),
    );
    expect(twoNodes(oneWorker)).toEqual(["worker0", "control0"]);
    expect(() => twoNodes({ gateway: FAKE_NODES.gateway, worker0: FAKE_NODES.worker0 })).toThrow(
      "pod-to-pod traffic needs two kubelet nodes; the stack has 1",
    );
  });
});

describe("load-balancer", () => {
  it("fails when the address is outside the MetalLB pool", async () => {
    const cluster = new FakeCluster();
    cluster.loadBalancerIp = "192.168.234.120";
    const result = await verdict(loadBalancer, cluster);
    expect(result).toEqual({
      passed: false,
      detail:
        "the LoadBalancer got 192.168.234.120, outside the MetalLB pool 192.168.234.200-192.168.234.250",
    });
    expectCleanedUp(cluster);
  });

  it("fails after the bounded wait when no address is ever assigned", async () => {
    const cluster = new FakeCluster();
    cluster.loadBalancerIp = undefined;
    const result = await verdict(loadBalancer, cluster);
    expect(result).toEqual({
      passed: false,
      detail: "LoadBalancer address: still pending after 0.1s",
    });
  });

  it("reports the pool address it reached from the host", async () => {
    const result = await verdict(loadBalancer, new FakeCluster());
    expect(result.detail).toBe(
      "192.168.234.200 (pool 192.168.234.200-192.168.234.250) answers from the host",
    );
  });

  it.each([
    ["192.168.234.200", true],
    ["192.168.234.250", true],
    ["192.168.234.199", false],
    ["192.168.234.251", false],
    ["not-an-ip", false],
  ])("inPool(%s) is %s", (ip, expected) => {
    expect(inPool(ip, { first: "192.168.234.200", last: "192.168.234.250" })).toBe(expected);
  });
});

describe("persistent-volume", () => {
  it("fails after the bounded wait when the claim stays Pending", async () => {
    const cluster = new FakeCluster();
    cluster.claimPhase = "Pending";
    const result = await verdict(persistentVolume, cluster);
    expect(result).toEqual({
      passed: false,
      detail: "claim smoke-claim: still Pending after 0.1s",
    });
    expectCleanedUp(cluster);
  });

  it("asks for the default StorageClass by naming none", async () => {
    const cluster = new FakeCluster();
    await verdict(persistentVolume, cluster);
    const claim = cluster.applied.find((o) => o.kind === "PersistentVolumeClaim");
    expect(claim?.spec).not.toHaveProperty("storageClassName");
  });
});

describe("secret-encrypted-at-rest", () => {
  it("fails when etcd holds the Secret unencrypted", async () => {
    const cluster = new FakeCluster();
    // What the identity provider writes: the protobuf magic and the plain value.
    cluster.etcdValue = (plaintext) => `k8s\u0000\n\f\n\u0002v1\u0012\u0006Secret ${plaintext}`;
    const result = await verdict(secretEncryption, cluster);
    expect(result.passed).toBe(false);
    expect(result.detail).toMatch(/^the Secret is stored unencrypted: the value starts with "k8s/);
    expectCleanedUp(cluster);
  });

  it("fails when the value was encrypted with another provider or key", async () => {
    const cluster = new FakeCluster();
    cluster.etcdValue = () => "k8s:enc:aescbc:v1:key1:xxxx";
    expect((await verdict(secretEncryption, cluster)).passed).toBe(false);
  });

  it("fails when etcd has no value at the key", async () => {
    const cluster = new FakeCluster();
    cluster.etcdValue = () => "";
    expect(await verdict(secretEncryption, cluster)).toEqual({
      passed: false,
      detail: "etcd has no value at /registry/secrets/hardway-smoke-test/smoke-secret",
    });
  });

  it("reads the raw key with the healthcheck client certificate on a control node", async () => {
    const cluster = new FakeCluster();
    await verdict(secretEncryption, cluster);
    expect(cluster.sshCommands).toEqual([
      {
        host: "192.168.234.11",
        command: etcdGetCommand("/registry/secrets/hardway-smoke-test/smoke-secret"),
      },
    ]);
    expect(etcdGetCommand("/k")).toBe(
      "sudo /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 " +
        "--cacert=/etc/kubernetes/pki/etcd/ca.crt " +
        "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt " +
        "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key " +
        "get '/k' --print-value-only | base64 -w0",
    );
    expect(ENCRYPTED_VALUE_PREFIX).toBe("k8s:enc:secretbox:v1:key1:");
  });
});

describe("resolvedAddresses", () => {
  it("takes the answers after Name:, not the server's own address", () => {
    const output =
      "Server:\t\t10.32.0.10\nAddress:\t10.32.0.10#53\n\nName:\tkubernetes.default.svc.cluster.local\nAddress: 10.32.0.1\n";
    expect(resolvedAddresses(output)).toEqual(["10.32.0.1"]);
    expect(resolvedAddresses(";; connection timed out; no servers could be reached\n")).toEqual([]);
  });
});

describe("runSmoke", () => {
  it("passes, times each check and deletes its namespace", async () => {
    const cluster = new FakeCluster();
    const lines: string[] = [];
    const report = await runSmoke(cluster, fakeContext(lines));
    expect(report.passed).toBe(true);
    expect(report.results.map((r) => [r.name, r.passed])).toEqual(
      ALL_CHECKS.map((c) => [c.name, true]),
    );
    expect(lines).toContain("SMOKE PASS: 6 checks passed");
    expect(lines.filter((l) => /^PASS \S+ \(\d+\.\ds\): /.test(l))).toHaveLength(6);
    expect(cluster.deleted.map((o) => o.kind)).toContain("Namespace");
    expect(cluster.liveObjects()).toEqual([]);
  });

  it("fails overall when one check fails, runs the rest and names the failure", async () => {
    const cluster = new FakeCluster();
    cluster.claimPhase = "Pending";
    const lines: string[] = [];
    const report = await runSmoke(cluster, fakeContext(lines));
    expect(report.passed).toBe(false);
    expect(report.results.filter((r) => !r.passed).map((r) => r.name)).toEqual([
      "persistent-volume",
    ]);
    expect(report.results).toHaveLength(6);
    expect(lines).toContain("SMOKE FAIL: 1 of 6 failed: persistent-volume");
  });

  it("reports a cleanup that fails as a failure of its own", async () => {
    const cluster = new FakeCluster();
    cluster.failDeletes = true;
    const report = await runSmoke(cluster, fakeContext(), [nodesReady]);
    expect(report.passed).toBe(false);
    expect(report.results.map((r) => [r.name, r.passed])).toEqual([
      ["nodes-ready", true],
      ["cleanup", false],
    ]);
  });

  it("fails a check whose own cleanup fails even when its verdict was good", async () => {
    const cluster = new FakeCluster();
    cluster.failDeletes = true;
    const result = await verdict(clusterDns, cluster);
    expect(result).toEqual({ passed: false, detail: "cleanup failed: the API server is gone" });
  });
});
