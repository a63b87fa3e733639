/**
 * ApiLoadBalancer: ldirectord on the gateway balances the API VIP over every control node, then a
 * host-side probe completes only when https://<VIP>:6443/healthz answers `ok` through it,
 * verified against the cluster CA. The cluster services wait for that probe.
 */
import * as pulumi from "@pulumi/pulumi";
import { EnsuredScript } from "../host/ensured";
import { LdirectordChecks, ldirectordConfig } from "../kubernetes/loadBalancer";
import { NODE_PATHS } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
import { ClusterNodes, NodeStep, targetFor } from "./nodeStep";
import { PkiMaterial, textFile } from "./pkiFiles";
import { knownHostsLine } from "./ssh";

export const WAIT_FOR_API_SCRIPT = "cluster/wait-for-api.sh";
/** update-ca-certificates picks up every *.crt here; ldirectord's HTTPS check trusts that store. */
export const GATEWAY_CA_PATH = "/usr/local/share/ca-certificates/hardway-kubernetes-ca.crt";

export interface ApiLoadBalancerArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly nodes: ClusterNodes;
  /** The API servers; the health probe waits for them. */
  readonly apiServers: pulumi.Resource;
  /**
   * How many times the host asks /healthz before it fails the deployment.
   * @default 120
   */
  readonly healthAttempts?: number;
  /**
   * Seconds between probes.
   * @default 5
   */
  readonly healthIntervalSeconds?: number;
  /** How ldirectord checks each API server. @default ldirectordConfig's */
  readonly checks?: LdirectordChecks;
}

export class ApiLoadBalancer extends pulumi.ComponentResource {
  readonly ldirectord: NodeStep;
  /** Completes once the API answers `ok` through the VIP. */
  readonly health: EnsuredScript;

  constructor(name: string, args: ApiLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:ApiLoadBalancer", name, {}, opts);
    const { plan, pki } = args;
    const gateway = targetFor(args.nodes, plan.gateway, [
      textFile(GATEWAY_CA_PATH, pki.cas["kubernetes-ca"].certPem),
      textFile(NODE_PATHS.ldirectordConfig, ldirectordConfig({ plan, ...args.checks })),
    ]);
    this.ldirectord = new NodeStep(
      `${name}-ldirectord`,
      {
        step: "ldirectord",
        nodes: args.nodes,
        targets: [gateway],
        afterFiles: "update-ca-certificates",
        // ldirectord comes from the distribution package in the image; the VIP itself is on the
        // gateway's NIC from its netplan config (see vm/cloudInit.ts).
        units: ["ldirectord.service"],
        // Another number of control planes: the servers that stay keep serving the VIP (a
        // restart would empty the table until each one's first check), a new one is added
        // once it answers /readyz, one that left is taken out.
        reload: [NODE_PATHS.ldirectordConfig],
      },
      { parent: this },
    );
    this.health = new EnsuredScript(
      `${name}-health`,
      {
        script: WAIT_FOR_API_SCRIPT,
        args: [
          "--url",
          `${plan.apiServerUrl}/healthz`,
          "--attempts",
          String(args.healthAttempts ?? 120),
          "--interval",
          String(args.healthIntervalSeconds ?? 5),
          // If the VIP never answers, the failure shows each server's /readyz?verbose and
          // what ldirectord saw, instead of only the last refused connection.
          ...plan.controls.flatMap((c) => ["--server", `https://${c.ip}:${plan.apiPort}`]),
          "--gateway",
          `${args.nodes.connection.user}@${plan.gateway.ip}`,
        ],
        stdin: pulumi
          .all([
            pki.cas["kubernetes-ca"].certPem,
            args.nodes.connection.privateKey,
            gateway.hostKey,
          ])
          .apply(([ca, key, hostKey]) =>
            [ca.trim(), key.trim(), knownHostsLine(plan.gateway.ip, hostKey)].join("\n"),
          ),
        // Its status asks the API (up to three times): after a host reboot `pulumi up` waits for it again.
        watch: true,
        // Each attempt: the interval and a 5 s curl; then up to a minute of diagnostics.
        timeoutSeconds: (args.healthAttempts ?? 120) * ((args.healthIntervalSeconds ?? 5) + 6) + 60,
      },
      { parent: this, dependsOn: [this.ldirectord, args.apiServers] },
    );
    this.registerOutputs({});
  }
}
