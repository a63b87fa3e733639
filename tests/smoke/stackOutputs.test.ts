import { claimInfo, nodeInfo, podInfo, serviceInfo, withCredentials } from "./kubectlClusterApi";
import * as fs from "node:fs";
import { runCommand } from "./run";
import { parseSmokeArgs } from "./smoke";
import { metallbPool, parseStackOutputs } from "./stackOutputs";

const outputs = {
  apiServer: "https://192.168.234.20:6443",
  kubeconfig: "apiVersion: v1\nkind: Config\n",
  sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
  caCertPem: "-----BEGIN CERTIFICATE-----",
  nodes: { control0: { ip: "192.168.234.11", role: "control", mac: "52:54:c0:a8:ea:0b" } },
};

describe("parseStackOutputs", () => {
  it("accepts the program's outputs and ignores the ones the checks do not need", () => {
    expect(parseStackOutputs(outputs).nodes.control0.role).toBe("control");
  });

  it("names every missing or malformed output", () => {
    const withoutKubeconfig = Object.fromEntries(
      Object.entries(outputs).filter(([key]) => key !== "kubeconfig"),
    );
    expect(() =>
      parseStackOutputs({ ...withoutKubeconfig, nodes: { x: { ip: "1.2.3.4", role: "db" } } }),
    ).toThrow(/kubeconfig: .*; nodes\.x\.role: .*; nodes\.x\.mac: /);
  });
});

describe("metallbPool", () => {
  it("uses hardway:metallbPool when the stack sets it", () => {
    expect(metallbPool(parseStackOutputs(outputs), "10.1.2.30 - 10.1.2.40")).toEqual({
      first: "10.1.2.30",
      last: "10.1.2.40",
    });
  });

  it("derives the default pool from the VM /24 the API address lives in", () => {
    expect(metallbPool(parseStackOutputs(outputs), undefined)).toEqual({
      first: "192.168.234.200",
      last: "192.168.234.250",
    });
  });
});

describe("kubectl JSON", () => {
  it("reads a node's Ready condition", () => {
    const node = {
      metadata: { name: "worker0" },
      status: {
        conditions: [
          { type: "MemoryPressure", status: "False" },
          { type: "Ready", status: "False", reason: "KubeletNotReady", message: "cni not ready" },
        ],
      },
    };
    expect(nodeInfo(node)).toEqual({
      name: "worker0",
      ready: false,
      readyDetail: "KubeletNotReady: cni not ready",
    });
    expect(nodeInfo({ metadata: { name: "new" } }).readyDetail).toBe("no Ready condition");
  });

  it("reads a pod's readiness, address, node and waiting reason", () => {
    expect(
      podInfo({
        spec: { nodeName: "worker1" },
        status: {
          phase: "Pending",
          conditions: [{ type: "Ready", status: "False" }],
          containerStatuses: [{ state: { waiting: { reason: "ErrImagePull" } } }],
        },
      }),
    ).toEqual({
      phase: "Pending",
      ready: false,
      podIp: undefined,
      nodeName: "worker1",
      waitingReason: "ErrImagePull",
    });
    expect(
      podInfo({
        status: {
          phase: "Running",
          podIP: "10.200.2.4",
          conditions: [{ type: "Ready", status: "True" }],
        },
      }),
    ).toMatchObject({ ready: true, podIp: "10.200.2.4" });
  });

  it("reads service addresses and claim phases", () => {
    expect(
      serviceInfo({
        spec: { clusterIP: "10.32.0.7" },
        status: { loadBalancer: { ingress: [{ ip: "192.168.234.200" }, { hostname: "x" }] } },
      }),
    ).toEqual({ clusterIp: "10.32.0.7", loadBalancerIps: ["192.168.234.200"] });
    expect(serviceInfo({ spec: {} })).toEqual({ clusterIp: undefined, loadBalancerIps: [] });
    expect(claimInfo({ spec: { storageClassName: "nfs" }, status: { phase: "Bound" } })).toEqual({
      phase: "Bound",
      storageClassName: "nfs",
    });
  });
});

describe("withCredentials", () => {
  it("writes private files for kubectl and ssh and removes them afterwards", async () => {
    const seen = await withCredentials(
      { kubeconfig: "config", sshPrivateKey: "key" },
      (credentials) => {
        const stat = (file: string) => fs.statSync(file).mode & 0o777;
        return Promise.resolve({
          ...credentials,
          modes: [stat(credentials.kubeconfigFile), stat(credentials.sshKeyFile)],
          key: fs.readFileSync(credentials.sshKeyFile, "utf8"),
        });
      },
    );
    expect(seen.modes).toEqual([0o600, 0o600]);
    expect(seen.key).toBe("key\n");
    expect(fs.existsSync(seen.kubeconfigFile)).toBe(false);
  });
});

describe("runCommand", () => {
  it("returns the exit code and both streams, and feeds stdin", async () => {
    expect(await runCommand("sh", ["-c", "cat; echo err >&2; exit 3"], { input: "in" })).toEqual({
      code: 3,
      stdout: "in",
      stderr: "err\n",
    });
  });

  it("kills a program that outlives its bound", async () => {
    const result = await runCommand("sleep", ["5"], { timeoutMs: 50 });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/sleep killed after 50ms/);
  });

  it("says which program is missing", async () => {
    await expect(runCommand("hardway-no-such-program", [])).rejects.toThrow(
      "hardway-no-such-program is not installed or not on PATH",
    );
  });
});

describe("parseSmokeArgs", () => {
  it("takes an optional --stack and refuses anything else", () => {
    expect(parseSmokeArgs([])).toEqual({});
    expect(parseSmokeArgs(["--stack", "dev"])).toEqual({ stack: "dev" });
    expect(() => parseSmokeArgs(["dev"])).toThrow(/usage: npm run smoke/);
  });
});
