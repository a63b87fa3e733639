/**
 * The checks of chapter 7's services, after clusterChecks (whose echo pod on a worker they use),
 * run after the cold `up` and again after the reboot, each timed:
 *
 * - CoreDNS: its pods Ready, on two nodes (or why one); from the echo pod on the worker the
 *   `kubernetes` Service's and a test Service's names resolve to their cluster IPs, and an
 *   external name fails fast (the host's resolver has no upstream here) without breaking them;
 * - MetalLB: a LoadBalancer Service in front of the echo pod gets the first address of the pool,
 *   and the host reaches the pod through it (the speaker answers ARP on the VM bridge);
 * - the images came through the registry mirror: the registry's access log has each one's
 *   manifest fetched by a node under its own registry's name.
 */
import * as path from "node:path";
import { stringify } from "yaml";
import { COREDNS_LABELS, COREDNS_NAME, COREDNS_REPLICAS } from "../../components/addons/coredns";
import { ADDONS_NAMESPACE, METALLB_POOL_NAME } from "../../components/addons/values";
import { CheckFailed, resolvedAddresses, waitFor } from "../smoke/checks";
import { runCommand } from "../smoke/run";
import { Cluster, POLLING } from "./cluster";
import { ECHO_PORT, peerAddress } from "./ociArchives";
import { imagesNotPulled, manifestRequests } from "./registry";

/** The cluster domain of the run's stack (the schema's default). */
const CLUSTER_DOMAIN = "cluster.local";
/** The Services the checks put in front of the echo pod. */
const ECHO_SERVICE = "echo";
const ECHO_LB = "echo-lb";

/** A name no resolver here can answer: the lab has no upstream DNS. */
export const EXTERNAL_NAME = "example.com.";
/** An answer (REFUSED, SERVFAIL, NXDOMAIN) within this, not a resolver timing out (5 s a try). */
const EXTERNAL_FAILS_WITHIN_S = 2;

/** The `real` seconds busybox's `time` printed to stderr, if it did. Pure. */
export function busyboxTimeSeconds(stderr: string): number | undefined {
  const match = /^real\s+(\d+)m\s*([\d.]+)s$/m.exec(stderr);
  return match === null ? undefined : Number(match[1]) * 60 + Number(match[2]);
}

export interface ServiceCheckArgs {
  /** The images the nodes must have pulled through the mirror. */
  readonly images: readonly string[];
  /** The registry's access log, as it is now. */
  readonly registryLog: () => string;
  /** What the summary says about versions the run tests instead of the pins. */
  readonly notes: readonly string[];
}

/** The first address of a pool as the IPAddressPool spec writes it ("a-b" or a CIDR). Pure. */
export function firstPoolAddress(spec: string): string {
  const range = /^(\d+\.\d+\.\d+\.\d+)-\d+\.\d+\.\d+\.\d+$/.exec(spec);
  if (range) {
    return range[1];
  }
  const cidr = /^(\d+\.\d+\.\d+)\.(\d+)\/(\d+)$/.exec(spec);
  if (cidr) {
    // MetalLB hands out the network address of a CIDR pool too, except for /31 and wider rules
    // that do not apply to the plan's ranges.
    return `${cidr[1]}.${cidr[2]}`;
  }
  throw new Error(`unexpected IPAddressPool address ${JSON.stringify(spec)}`);
}

/** Ready pods of CoreDNS, the nodes they run on, and a sentence on the others. Pure. */
export function corednsPlacement(pods: {
  items: {
    metadata: { name: string };
    spec: { nodeName?: string };
    status: { phase?: string; conditions?: { type: string; status: string }[] };
  }[];
}): { ready: number; readyNodes: string[]; others: string[] } {
  const readyNodes: string[] = [];
  const others: string[] = [];
  for (const pod of pods.items) {
    const ready = pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    if (ready && pod.spec.nodeName !== undefined) {
      readyNodes.push(pod.spec.nodeName);
    } else {
      others.push(
        `${pod.metadata.name} ${pod.status.phase ?? "?"} on ${pod.spec.nodeName ?? "no node"}`,
      );
    }
  }
  return { ready: readyNodes.length, readyNodes: [...new Set(readyNodes)].sort(), others };
}

/** A Service in front of the echo pod (clusterChecks' Deployment `echo`), as YAML. */
const echoService = (name: string, type: "ClusterIP" | "LoadBalancer") =>
  stringify({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name },
    spec: { type, selector: { app: "echo" }, ports: [{ port: ECHO_PORT, targetPort: ECHO_PORT }] },
  });

const elapsed = (started: number) => `${((Date.now() - started) / 1000).toFixed(1)} s`;

export async function serviceChecks(cluster: Cluster, args: ServiceCheckArgs): Promise<string> {
  const notes: string[] = [...args.notes];

  let started = Date.now();
  await cluster.kubectl(
    ["-n", ADDONS_NAMESPACE, "rollout", "status", `deployment/${COREDNS_NAME}`, "--timeout=600s"],
    undefined,
    660_000,
  );
  const selector = Object.entries(COREDNS_LABELS)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const placement = corednsPlacement(
    JSON.parse(
      await cluster.kubectl(["-n", ADDONS_NAMESPACE, "get", "pods", "-l", selector, "-o", "json"]),
    ) as Parameters<typeof corednsPlacement>[0],
  );
  if (placement.ready < COREDNS_REPLICAS) {
    throw new CheckFailed(
      `${placement.ready} of ${COREDNS_REPLICAS} CoreDNS pods Ready (on ${placement.readyNodes.join(", ") || "no node"}); ${placement.others.join("; ") || "no other pod"}`,
    );
  }
  // The spread is ScheduleAnyway and nothing moves a running pod back: after a drain of one of
  // two nodes both replicas stay on the other.
  notes.push(
    placement.readyNodes.length >= 2
      ? `CoreDNS Ready on ${placement.readyNodes.join(" and ")} (${elapsed(started)})`
      : `CoreDNS's ${COREDNS_REPLICAS} pods Ready, both on ${placement.readyNodes.join("")}: a drain moved one there and the scheduler spreads only new pods (${elapsed(started)})`,
  );

  started = Date.now();
  await cluster.kubectl(["apply", "-f", "-"], echoService(ECHO_SERVICE, "ClusterIP"));
  const clusterIp = async (name: string) =>
    (await cluster.kubectl(["get", "service", name, "-o", "jsonpath={.spec.clusterIP}"])).trim();
  const expected: Record<string, string> = {
    [`kubernetes.default.svc.${CLUSTER_DOMAIN}.`]: await clusterIp("kubernetes"),
    [`${ECHO_SERVICE}.default.svc.${CLUSTER_DOMAIN}.`]: await clusterIp(ECHO_SERVICE),
  };
  // Timed inside the pod by busybox: kubectl exec alone takes 5-20 s on a loaded TCG node.
  const nslookup = async (name: string) => {
    const result = await runCommand(
      cluster.kubectlBin,
      [
        "--kubeconfig",
        path.join(cluster.dir, "kubeconfig"),
        "exec",
        "deployment/echo",
        "--",
        "/bin/busybox",
        "time",
        "/bin/busybox",
        "nslookup",
        name,
      ],
      { timeoutMs: 120_000 },
    );
    return { ...result, seconds: busyboxTimeSeconds(result.stderr) };
  };
  const resolveAll = async () => {
    for (const [name, ip] of Object.entries(expected)) {
      // A fresh CoreDNS may still be syncing with the API: ask again for a while.
      await waitFor(POLLING, `${name} resolving in pod echo`, 180_000, async () => {
        const answer = await nslookup(name);
        const addresses = resolvedAddresses(answer.stdout);
        return addresses.includes(ip)
          ? { done: true, value: undefined }
          : {
              done: false,
              state: `resolving to [${addresses.join(", ")}], not ${ip} (exit ${answer.code}: ${(answer.stdout + answer.stderr).trim().slice(-300)})`,
            };
      });
    }
  };
  await resolveAll();
  const external = await nslookup(EXTERNAL_NAME);
  if (resolvedAddresses(external.stdout).length > 0) {
    throw new CheckFailed(`${EXTERNAL_NAME} resolved here, with no upstream: ${external.stdout}`);
  }
  if (external.seconds === undefined || external.seconds > EXTERNAL_FAILS_WITHIN_S) {
    throw new CheckFailed(
      `${EXTERNAL_NAME} took ${external.seconds === undefined ? "an unknown time" : `${external.seconds.toFixed(1)} s`} to fail (more than ${EXTERNAL_FAILS_WITHIN_S} s); a lab without upstream DNS must answer at once:\n${external.stdout}${external.stderr}`,
    );
  }
  await resolveAll();
  notes.push(
    `DNS in pod echo: ${Object.entries(expected)
      .map(([n, ip]) => `${n} → ${ip}`)
      .join(
        ", ",
      )}; ${EXTERNAL_NAME} fails in ${external.seconds.toFixed(2)} s (${external.stdout.match(/can't find[^\n]*/)?.[0] ?? "no answer"}) and cluster names still resolve (${elapsed(started)})`,
  );

  started = Date.now();
  const poolSpec = (
    await cluster.kubectl([
      "-n",
      ADDONS_NAMESPACE,
      "get",
      "ipaddresspool",
      METALLB_POOL_NAME,
      "-o",
      "jsonpath={.spec.addresses[0]}",
    ])
  ).trim();
  const first = firstPoolAddress(poolSpec);
  await cluster.kubectl(["apply", "-f", "-"], echoService(ECHO_LB, "LoadBalancer"));
  const lbIp = await waitFor(POLLING, `an address for Service ${ECHO_LB}`, 300_000, async () => {
    const ip = (
      await cluster.kubectl([
        "get",
        "service",
        ECHO_LB,
        "-o",
        "jsonpath={.status.loadBalancer.ingress[0].ip}",
      ])
    ).trim();
    return ip === "" ? { done: false, state: "pending" } : { done: true, value: ip };
  });
  if (lbIp !== first) {
    throw new CheckFailed(
      `Service ${ECHO_LB} got ${lbIp}; the first address of the pool (${poolSpec}) is ${first}`,
    );
  }
  const seen = await waitFor(POLLING, `the host reaching ${lbIp}`, 180_000, async () => {
    const answer = await runCommand("curl", [
      "-sS",
      "--max-time",
      "5",
      `http://${lbIp}:${ECHO_PORT}/cgi-bin/ip`,
    ]);
    return answer.code === 0
      ? { done: true, value: peerAddress(answer.stdout) }
      : { done: false, state: answer.stderr.trim() };
  });
  const arp = await runCommand("ip", ["neigh", "show", lbIp]);
  notes.push(
    `LoadBalancer ${ECHO_LB} → ${lbIp} (first of ${poolSpec}), reached from the host (the pod saw ${seen}; ARP ${arp.stdout.trim() || "not cached"}) (${elapsed(started)})`,
  );

  const missing = imagesNotPulled(manifestRequests(args.registryLog()), args.images);
  if (missing.length > 0) {
    throw new CheckFailed(
      `no node pulled ${missing.join(", ")} through the registry mirror (its access log has no request for them)`,
    );
  }
  notes.push(`pulled through the mirror: ${args.images.join(", ")}`);
  return notes.join("; ");
}
