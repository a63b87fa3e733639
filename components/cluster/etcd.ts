/**
 * Etcd: one member per control node (binary, certificates, unit), then a probe on the first
 * control node that completes only when every member reports healthy. The API servers wait for
 * that probe, not for the individual members.
 */
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { ETCD_CLIENT_PORT, renderEtcdUnit } from "../kubernetes/etcd";
import { CA_FILES, certFiles, NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
import { etcdPeerCertId, etcdServerCertId } from "../pki/certificates";
import { ArtifactCache } from "./artifactCache";
import { NodeScripts } from "./nodeScripts";
import { nodeStep, stageAll } from "./nodeStep";
import { PkiMaterial, caCertFile, leafFiles, textFile } from "./pkiFiles";
import { shellCommand } from "./shell";

export const ETCD_UNIT = "etcd.service";

export interface EtcdArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly scripts: NodeScripts;
  readonly artifacts: ArtifactCache;
  /** `--initial-cluster-token`: keeps two clusters on one network apart, e.g. the cluster name. */
  readonly clusterToken: string;
  /**
   * How many times the health probe asks before it fails the deployment.
   * @default 60
   */
  readonly healthAttempts?: number;
  /**
   * Seconds between health probes.
   * @default 5
   */
  readonly healthIntervalSeconds?: number;
}

export class Etcd extends pulumi.ComponentResource {
  /** The member step of each control node, by node name. */
  readonly members: Readonly<Record<string, remote.Command>>;
  /** Completes once `etcdctl endpoint health --cluster` passes for every member. */
  readonly health: remote.Command;

  constructor(name: string, args: EtcdArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:Etcd", name, {}, opts);
    const { plan, pki } = args;
    const fetched = [args.artifacts.get("etcd", this)];
    const members: Record<string, remote.Command> = {};
    for (const node of plan.controls) {
      const target = args.scripts.target(node);
      members[node.name] = nodeStep(
        `${name}-${node.name}`,
        {
          target,
          step: "etcd",
          staged: stageAll(`${name}-${node.name}`, target, fetched, this),
          files: [
            caCertFile(pki, "etcd-ca"),
            ...leafFiles(pki, etcdServerCertId(node.name)),
            ...leafFiles(pki, etcdPeerCertId(node.name)),
            // On every member, so the probe and an operator can use etcdctl on any control node.
            ...leafFiles(pki, "etcd-healthcheck-client"),
            textFile(
              `${SYSTEMD_DIR}/${ETCD_UNIT}`,
              renderEtcdUnit({
                member: node,
                members: plan.controls,
                clusterToken: args.clusterToken,
              }),
            ),
          ],
          units: [ETCD_UNIT],
          stateDirs: [NODE_PATHS.etcdDataDir],
        },
        this,
      );
    }
    this.members = members;

    const prober = plan.controls[0];
    const probeTarget = args.scripts.target(prober);
    const client = certFiles("etcd-healthcheck-client");
    this.health = new remote.Command(
      `${name}-health`,
      {
        connection: probeTarget.connection,
        // A probe installs nothing, so it has no delete.
        create: shellCommand([
          "sudo",
          "bash",
          `${probeTarget.scriptsDir}/etcd-health.sh`,
          "--endpoint",
          `https://127.0.0.1:${ETCD_CLIENT_PORT}`,
          "--cacert",
          CA_FILES["etcd-ca"].cert,
          "--cert",
          client.cert,
          "--key",
          client.key,
          "--attempts",
          String(args.healthAttempts ?? 60),
          "--interval",
          String(args.healthIntervalSeconds ?? 5),
        ]),
        // Any member that was re-applied restarted; probe again.
        triggers: Object.values(members).map((m) => m.triggers),
      },
      { parent: this, dependsOn: Object.values(members) },
    );
    this.registerOutputs({ health: this.health.stdout });
  }
}
