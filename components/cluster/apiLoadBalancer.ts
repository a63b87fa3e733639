/**
 * ApiLoadBalancer: ldirectord on the gateway balances the API VIP over every control node, then a
 * host-side probe completes only when https://<VIP>:6443/healthz answers `ok` through it,
 * verified against the cluster CA. Kubelets and kube-proxies wait for that probe.
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { local, remote } from "@pulumi/command";
import { ldirectordConfig } from "../kubernetes/loadBalancer";
import { NODE_PATHS } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
import { NodeScripts } from "./nodeScripts";
import { nodeStep } from "./nodeStep";
import { PkiMaterial, textFile } from "./pkiFiles";
import { shellCommand } from "./shell";

export const WAIT_FOR_API_SCRIPT = path.resolve(__dirname, "../../assets/cluster/wait-for-api.sh");
/** update-ca-certificates picks up every *.crt here; ldirectord's HTTPS check trusts that store. */
export const GATEWAY_CA_PATH = "/usr/local/share/ca-certificates/hardway-kubernetes-ca.crt";

export interface ApiLoadBalancerArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly scripts: NodeScripts;
  /** The API server steps; the health probe waits for them. */
  readonly apiServers: readonly remote.Command[];
  /**
   * How many times the host asks /healthz before it fails the deployment.
   * @default 60
   */
  readonly healthAttempts?: number;
  /**
   * Seconds between probes.
   * @default 5
   */
  readonly healthIntervalSeconds?: number;
}

export class ApiLoadBalancer extends pulumi.ComponentResource {
  readonly ldirectord: remote.Command;
  /** Completes once the API answers `ok` through the VIP. */
  readonly health: local.Command;

  constructor(name: string, args: ApiLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:ApiLoadBalancer", name, {}, opts);
    const { plan, pki } = args;
    this.ldirectord = nodeStep(
      `${name}-ldirectord`,
      {
        target: args.scripts.target(plan.gateway),
        step: "ldirectord",
        files: [
          textFile(GATEWAY_CA_PATH, pki.cas["kubernetes-ca"].certPem),
          textFile(NODE_PATHS.ldirectordConfig, ldirectordConfig({ plan })),
        ],
        afterFiles: "update-ca-certificates",
        // ldirectord comes from the distribution package cloud-init installed; the VIP itself
        // is on the gateway's NIC from its netplan config (see vm/cloudInit.ts).
        units: ["ldirectord.service"],
      },
      this,
    );
    const url = `${plan.apiServerUrl}/healthz`;
    this.health = new local.Command(
      `${name}-health`,
      {
        // A probe installs nothing, so it has no delete.
        create: shellCommand([
          "bash",
          WAIT_FOR_API_SCRIPT,
          "--url",
          url,
          "--attempts",
          String(args.healthAttempts ?? 60),
          "--interval",
          String(args.healthIntervalSeconds ?? 5),
        ]),
        stdin: pki.cas["kubernetes-ca"].certPem,
        triggers: [this.ldirectord.triggers, ...args.apiServers.map((s) => s.triggers)],
      },
      { parent: this, dependsOn: [this.ldirectord, ...args.apiServers] },
    );
    this.registerOutputs({ health: this.health.stdout });
  }
}
