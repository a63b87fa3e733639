/** The HA run's failover phase: one control node stops; the API keeps answering through the
 * VIP and etcd keeps its quorum. */
import * as crypto from "node:crypto";
import * as path from "node:path";
import { runCommand } from "../smoke/run";
import { Cluster } from "./cluster";
import { killVms } from "./hostFaults";

export async function controlNodeDown(
  cluster: Cluster,
  stackName: string,
  node: string,
): Promise<{ ok: boolean; detail: string }> {
  // The trailing space: control1, not control10.
  await killVms(stackName, `${node} `);
  // One /readyz through the VIP a second until ten in a row answer: the failed ones are the
  // failover window (ldirectord's check interval, then IPVS dropping the dead real server).
  const started = Date.now();
  let answered = 0;
  let attempts = 0;
  let failures = 0;
  let lastFailure = 0;
  while (attempts < 90 && answered < 10) {
    attempts++;
    const result = await runCommand(cluster.kubectlBin, [
      "--kubeconfig",
      path.join(cluster.dir, "kubeconfig"),
      "--request-timeout=5s",
      "get",
      "--raw",
      "/readyz",
    ]);
    if (result.code === 0) {
      answered++;
    } else {
      answered = 0;
      failures++;
      lastFailure = (Date.now() - started) / 1000;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const recovered = (Date.now() - started) / 1000;
  const value = crypto.randomBytes(4).toString("hex");
  await cluster.etcdctl(`put /hardway/quorum ${value}`);
  const read = (await cluster.etcdctl("get /hardway/quorum --print-value-only")).trim();
  return {
    ok: answered >= 10 && read === value,
    detail: `after ${node} stopped, ${failures} of ${attempts} /readyz through the VIP failed${failures > 0 ? `, the last ${lastFailure.toFixed(1)} s after` : ""}; 10 in a row answered ${recovered.toFixed(0)} s after; etcd writes with 2 of 3 members: ${read === value ? "yes" : "no"}`,
  };
}
