/**
 * The checks of a converged cluster, run after the cold `up` and again after the reboot: etcd
 * healthy, /healthz through the VIP, nodes Ready, a Secret encrypted in etcd, and two pods (each
 * a one-replica Deployment pinned to a node) that reach each other without NAT, and that the host
 * reaches without NAT (with the bridge CNI, whose pod networks the host routes to).
 * What a check expects is derived from the stack's outputs, not from the default address plan.
 */
import * as crypto from "node:crypto";
import { stringify } from "yaml";
import { Cni } from "../../components/config/schema";
import { waitFor } from "../smoke/checks";
import { runCommand } from "../smoke/run";
import { Cluster, POLLING, pinnedDeployment, podOf } from "./cluster";
import { ECHO_PORT, peerAddress } from "./ociArchives";

/** The host's address on the VM network: .1 of the nodes' /24 (the address plan). Pure. */
export function hostAddress(nodeIp: string): string {
  return nodeIp.replace(/\.\d+$/, ".1");
}

/** The two workloads of the checks, and where they run. */
export function checkWorkloads(cluster: Cluster): { echoNode: string; clientNode: string } {
  const nodes = cluster.kubeletNodes();
  const controls = cluster.controls();
  // The echo pod on a worker when there is one; the client on the first control node.
  return { echoNode: nodes[nodes.length - 1], clientNode: controls[0] };
}

export async function clusterChecks(
  cluster: Cluster,
  expected: {
    readonly controlPlanes: number;
    readonly workers: number;
    readonly cni: Cni;
  },
): Promise<string> {
  cluster.refreshOutputs();
  const notes: string[] = [];
  const health = await cluster.etcdctl("endpoint health --cluster");
  const healthy = health.match(/is healthy/g)?.length ?? 0;
  if (healthy !== expected.controlPlanes) {
    throw new Error(`etcd: ${healthy} of ${expected.controlPlanes} members healthy:\n${health}`);
  }
  notes.push(`etcd ${healthy}/${expected.controlPlanes} healthy`);
  const vip = cluster.apiServerUrl();
  // Asked again for up to two minutes: a loaded TCG guest can miss one 10 s deadline.
  await waitFor(POLLING, "/healthz through the VIP", 120_000, async () => {
    const healthz = await cluster.askHealth(`https://${vip.host}/healthz`, 10);
    return healthz.ok
      ? { done: true, value: undefined }
      : { done: false, state: `answering ${healthz.answer}` };
  });
  notes.push("/healthz ok through the VIP");
  await cluster.kubectl(
    ["wait", "--for=condition=Ready", "node", "--all", "--timeout=900s"],
    undefined,
    960_000,
  );
  const nodes = (await cluster.kubectl(["get", "nodes", "-o", "name"])).trim().split("\n");
  if (nodes.length !== expected.controlPlanes + expected.workers) {
    throw new Error(
      `expected ${expected.controlPlanes + expected.workers} nodes, got ${nodes.join(", ")}`,
    );
  }
  notes.push(`${nodes.length} nodes Ready`);

  const secretName = `e2e-${crypto.randomBytes(3).toString("hex")}`;
  await cluster.kubectl(["create", "secret", "generic", secretName, "--from-literal=k=v"]);
  const raw = await cluster.etcdctl(
    `get /registry/secrets/default/${secretName} --print-value-only`,
  );
  if (!raw.startsWith("k8s:enc:secretbox:v1:key1:")) {
    throw new Error(`the Secret is not encrypted in etcd: ${JSON.stringify(raw.slice(0, 40))}`);
  }
  await cluster.kubectl(["delete", "secret", secretName]);
  notes.push("Secret stored as k8s:enc:secretbox:v1:key1:");

  // The service-account controller creates "default" in each namespace a few seconds after
  // the controller-manager starts; a pod applied before that is refused.
  await cluster.kubectl(
    ["wait", "--for=create", "serviceaccount/default", "--timeout=300s"],
    undefined,
    320_000,
  );
  const { echoNode, clientNode } = checkWorkloads(cluster);
  await cluster.kubectl(["apply", "-f", "-"], stringify(pinnedDeployment("echo", echoNode)));
  await cluster.kubectl(
    ["apply", "-f", "-"],
    stringify(pinnedDeployment("client", clientNode, ["/bin/busybox", "sleep", "1000000"])),
  );
  await cluster.kubectl(
    ["rollout", "status", "deployment/echo", "deployment/client", "--timeout=900s"],
    undefined,
    960_000,
  );
  const running = async (app: string) => {
    const pod = await podOf(cluster, app);
    if (pod === undefined) {
      throw new Error(`no Running pod of ${app}`);
    }
    return pod;
  };
  if (expected.cni === "bridge") {
    notes.push(await hostReachesPod(cluster, echoNode, running));
  } else {
    // Cilium's pods are behind its tunnel between the nodes; the host has no route to them.
    notes.push("host → pod: not checked with Cilium (no host routes to its pod networks)");
  }

  // The client's address is read after its request: the API may lag behind its new sandbox too.
  const fromPod = await waitFor(POLLING, "pod client reaching pod echo", 300_000, async () => {
    const echo = await running("echo");
    let seen: string;
    try {
      seen = peerAddress(
        await cluster.kubectl([
          "exec",
          "deployment/client",
          "--",
          "/bin/busybox",
          "wget",
          "-qO-",
          `http://${echo.ip}:${ECHO_PORT}/cgi-bin/ip`,
        ]),
      );
    } catch (err) {
      return { done: false, state: `failing at ${echo.ip}: ${(err as Error).message.trim()}` };
    }
    const client = await running("client");
    return seen === client.ip
      ? { done: true, value: seen }
      : { done: false, state: `seeing the client as ${seen}, not ${client.ip}: NATed` };
  });
  notes.push(
    `pod on ${clientNode} → pod on ${echoNode}: seen as ${fromPod} (its own address), kubectl exec works`,
  );
  const logs = await cluster.kubectl(["logs", "deployment/echo"]);
  if (!logs.includes("cgi-bin/ip")) {
    throw new Error(`kubectl logs shows no request:\n${logs.slice(-500)}`);
  }
  notes.push("kubectl logs works");
  return notes.join("; ");
}

/** The host asks the echo pod for the address it sees: the host's own, not NATed. */
async function hostReachesPod(
  cluster: Cluster,
  echoNode: string,
  running: (app: string) => Promise<{ ip: string }>,
): Promise<string> {
  const hostIp = hostAddress(cluster.outputs.nodes[echoNode].ip);
  // Right after a host reboot the API may still show a pod Running with the address of its old
  // sandbox until its kubelet reports the new one: read the addresses again until a request
  // gets through, then judge the address the pod saw.
  const fromHost = await waitFor(POLLING, "the host reaching pod echo", 300_000, async () => {
    const echo = await running("echo");
    const answer = await runCommand("curl", [
      "-sS",
      "--max-time",
      "10",
      `http://${echo.ip}:${ECHO_PORT}/cgi-bin/ip`,
    ]);
    return answer.code === 0
      ? { done: true, value: peerAddress(answer.stdout) }
      : { done: false, state: `failing at ${echo.ip}: ${answer.stderr.trim()}` };
  });
  if (fromHost !== hostIp) {
    throw new Error(
      `the pod saw the host as ${JSON.stringify(fromHost)}; expected ${hostIp}, no NAT`,
    );
  }
  return `host → pod on ${echoNode}: seen as ${fromHost}`;
}
