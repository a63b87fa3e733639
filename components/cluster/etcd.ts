/**
 * Etcd: one member per control node (binary, certificates, unit) as a single step that rolls over
 * the members. On create every member starts without waiting for the others (a member is ready
 * only once a quorum exists); the step completes when the whole cluster reports healthy. On an
 * update (a new version, flags or CA) members restart one at a time, each healthy again before
 * the next goes, so the cluster never loses its quorum or its data. A renewed leaf certificate
 * is only written: etcd reads it again at its next TLS handshake.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  ETCD_CLIENT_PORT,
  EtcdTiming,
  etcdLeaveCommand,
  renderEtcdMembers,
  renderEtcdUnit,
} from "../kubernetes/etcd";
import { CA_FILES, certFiles, NODE_PATHS, SYSTEMD_DIR } from "../kubernetes/paths";
import { AddressPlan } from "../network/addressPlan";
import { etcdPeerCertId, etcdServerCertId } from "../pki/certificates";
import { ArtifactCache } from "./artifactCache";
import { ClusterNodes, NODE_ASSETS_DIR, NodeStep, targetFor } from "./nodeStep";
import { PkiMaterial, caCertFile, leafFiles, textFile } from "./pkiFiles";

export const ETCD_UNIT = "etcd.service";

export interface EtcdArgs {
  readonly plan: AddressPlan;
  readonly pki: PkiMaterial;
  readonly nodes: ClusterNodes;
  readonly artifacts: ArtifactCache;
  /** The etcd release the members run: an update may not skip or go back a minor. */
  readonly version: string;
  /** `--initial-cluster-token`: keeps two clusters on one network apart, e.g. the cluster name. */
  readonly clusterToken: string;
  /**
   * How many times a health probe asks before it fails the deployment.
   * @default 120
   */
  readonly healthAttempts?: number;
  /**
   * Seconds between health probes.
   * @default 5
   */
  readonly healthIntervalSeconds?: number;
  /** Raft timing for every member. @default etcd's own */
  readonly timing?: EtcdTiming;
}

/** assets/node/etcd-join.sh, which the etcd unit runs before each start of a member. */
export function etcdJoinScript(dir: string = NODE_ASSETS_DIR): string {
  return fs.readFileSync(path.join(dir, "etcd-join.sh"), "utf8");
}

/**
 * assets/node/etcd-member.sh: the unit runs it after each start (a learner is promoted); the
 * step runs it on a member that leaves the cluster.
 */
export function etcdMemberScript(dir: string = NODE_ASSETS_DIR): string {
  return fs.readFileSync(path.join(dir, "etcd-member.sh"), "utf8");
}

/** The etcd-health.sh command line (run on a control node) with the health-check client's files. */
export function etcdHealthCommand(
  scope: "cluster" | "member",
  attempts: number,
  intervalSeconds: number,
): string[] {
  const client = certFiles("etcd-healthcheck-client");
  return [
    "bash",
    "etcd-health.sh",
    "--endpoint",
    `https://127.0.0.1:${ETCD_CLIENT_PORT}`,
    "--cacert",
    CA_FILES["etcd-ca"].cert,
    "--cert",
    client.cert,
    "--key",
    client.key,
    "--scope",
    scope,
    "--attempts",
    String(attempts),
    "--interval",
    String(intervalSeconds),
  ];
}

/**
 * The leaf certificates a member's step installs: its server and peer pairs, and the health
 * probe's client pair (on every member, so the probe and an operator can use etcdctl anywhere).
 */
function etcdLeafCertIds(member: string): string[] {
  return [etcdServerCertId(member), etcdPeerCertId(member), "etcd-healthcheck-client"];
}

/** The etcd step's leaf certificate and key files, none of which needs a restart. Pure. */
export function etcdNoRestartFiles(members: readonly string[]): string[] {
  const files = members.flatMap(etcdLeafCertIds).map(certFiles);
  return [...new Set(files.flatMap((f) => [f.cert, f.key]))];
}

export class Etcd extends pulumi.ComponentResource {
  /** Every member; completes once `etcdctl endpoint health --cluster` passes. */
  readonly members: NodeStep;

  constructor(name: string, args: EtcdArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hardway:cluster:Etcd", name, {}, opts);
    const { plan, pki } = args;
    const attempts = args.healthAttempts ?? 120;
    const interval = args.healthIntervalSeconds ?? 5;
    this.members = new NodeStep(
      `${name}-members`,
      {
        step: "etcd",
        nodes: args.nodes,
        targets: plan.controls.map((node) =>
          targetFor(args.nodes, node, [
            caCertFile(pki, "etcd-ca"),
            ...etcdLeafCertIds(node.name).flatMap((id) => leafFiles(pki, id)),
            textFile(NODE_PATHS.etcdJoinScript, etcdJoinScript()),
            textFile(NODE_PATHS.etcdMemberScript, etcdMemberScript()),
            textFile(NODE_PATHS.etcdMembers, renderEtcdMembers(plan.controls)),
            textFile(
              `${SYSTEMD_DIR}/${ETCD_UNIT}`,
              renderEtcdUnit({
                member: node,
                members: plan.controls,
                clusterToken: args.clusterToken,
                timing: args.timing,
              }),
            ),
          ]),
        ),
        artifacts: args.artifacts.get(["etcd"], this),
        release: { software: "etcd", version: args.version },
        units: [ETCD_UNIT],
        startNoBlock: [ETCD_UNIT],
        stateDirs: [NODE_PATHS.etcdDataDir],
        // A renewed certificate is not a restart: etcd loads its certificate and key again at
        // every TLS handshake (client/pkg/transport, GetCertificate), and the probe's client
        // pair is etcdctl's alone. A new CA, unit or binary still rolls the members.
        // etcd-join.sh and etcd-member.sh, and the members they read, matter only when a member
        // starts (or leaves): a new one waits for the next start, and another number of
        // members restarts none of those that stay.
        noRestart: [
          ...etcdNoRestartFiles(plan.controls.map((n) => n.name)),
          NODE_PATHS.etcdJoinScript,
          NODE_PATHS.etcdMemberScript,
          NODE_PATHS.etcdMembers,
        ],
        // A member that leaves is removed from the cluster while it still runs, so the quorum
        // of those that stay is counted without it before it stops.
        beforeLeave: etcdLeaveCommand(),
        readiness: etcdHealthCommand("member", attempts, interval),
        finalCheck: etcdHealthCommand("cluster", attempts, interval),
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
