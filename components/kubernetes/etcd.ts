/**
 * etcd: one member per control node, TLS everywhere. Clients (kube-apiserver, etcdctl) and peers
 * must present a certificate signed by the etcd CA, which is separate from the cluster CA so a
 * Kubernetes client certificate can never open the datastore.
 */
import { AddressPlan, NodeAddress } from "../network/addressPlan";
import { etcdPeerCertId, etcdServerCertId } from "../pki/certificates";
import { BIN_DIR, CA_FILES, certFiles, NODE_PATHS } from "./paths";
import { CONTROL_PLANE_CPU_WEIGHT, flags, renderServiceUnit, ServiceUnit } from "./systemd";

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const ETCD_METRICS_PORT = 2381;

export interface EtcdMemberArgs {
  readonly member: NodeAddress;
  /** Every control node, in plan order; each is one member of the initial cluster. */
  readonly members: readonly NodeAddress[];
  /** Keeps members of two clusters on one network from joining each other. */
  readonly clusterToken: string;
  /** @default "/usr/local/bin/etcd" */
  readonly binary?: string;
  /** @default NODE_PATHS.etcdDataDir */
  readonly dataDir?: string;
  /** Certificate and key paths; default to the node layout in paths.ts. */
  readonly files?: EtcdFiles;
  /** Raft timing; etcd's defaults (100 ms heartbeat, 1 s election) unless given. */
  readonly timing?: EtcdTiming;
  /** etcd-join.sh and its etcdctl and output file; default to the node layout in paths.ts. */
  readonly join?: EtcdJoinFiles;
}

export interface EtcdJoinFiles {
  readonly script: string;
  /** The planned members, "NAME PEER-URL CLIENT-URL" lines (renderEtcdMembers). */
  readonly membersFile: string;
  /** etcd-member.sh: promotes a member that joined as a learner, and takes one out. */
  readonly memberScript: string;
  readonly etcdctl: string;
  readonly envFile: string;
  /** A client certificate and key of the etcd CA: etcd-join.sh asks the other members. */
  readonly clientCert: string;
  readonly clientKey: string;
}

const joinFilesOf = (args: EtcdMemberArgs) => args.join ?? defaultEtcdJoinFiles();

export function defaultEtcdJoinFiles(): EtcdJoinFiles {
  const client = certFiles("etcd-healthcheck-client");
  return {
    script: NODE_PATHS.etcdJoinScript,
    membersFile: NODE_PATHS.etcdMembers,
    memberScript: NODE_PATHS.etcdMemberScript,
    etcdctl: `${BIN_DIR}/etcdctl`,
    envFile: NODE_PATHS.etcdJoinEnv,
    clientCert: client.cert,
    clientKey: client.key,
  };
}

/** etcd's Raft timing: how often the leader pings, how long followers wait before an election. */
export interface EtcdTiming {
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
}

/**
 * Raft timing for members on emulated (TCG) guests. Three such members on a two-core host
 * changed leader 40 times during one cold `up` with etcd's defaults, and the API servers saw
 * "etcdserver: no leader"; etcd's tuning guide asks for an election timeout of about ten
 * heartbeats, and heartbeats that the slowest member still answers in time.
 */
export const EMULATED_ETCD_TIMING: EtcdTiming = {
  heartbeatIntervalMs: 500,
  electionTimeoutMs: 5000,
};

export interface EtcdFiles {
  readonly trustedCa: string;
  readonly cert: string;
  readonly key: string;
  readonly peerCert: string;
  readonly peerKey: string;
}

export function defaultEtcdFiles(node: string): EtcdFiles {
  const server = certFiles(etcdServerCertId(node));
  const peer = certFiles(etcdPeerCertId(node));
  return {
    trustedCa: CA_FILES["etcd-ca"].cert,
    cert: server.cert,
    key: server.key,
    peerCert: peer.cert,
    peerKey: peer.key,
  };
}

/** `https://<control ip>:2379` for each member: the kube-apiserver's `--etcd-servers`. */
export function etcdClientUrls(members: readonly NodeAddress[]): string[] {
  return members.map((m) => `https://${m.ip}:${ETCD_CLIENT_PORT}`);
}

export function etcdInitialCluster(members: readonly NodeAddress[]): string {
  return members.map((m) => `${m.name}=https://${m.ip}:${ETCD_PEER_PORT}`).join(",");
}

/**
 * The planned members as etcd-join.sh and etcd-member.sh read them: "NAME PEER-URL CLIENT-URL"
 * per line, in plan order. It is the one file of a member that names the others, so a change of
 * members changes no unit and restarts no member. Pure.
 */
export function renderEtcdMembers(members: readonly NodeAddress[]): string {
  return [
    "# name peer-url client-url: the planned etcd members (etcd-join.sh, etcd-member.sh)",
    ...members.map((m) => `${m.name} ${peerUrlOf(m)} https://${m.ip}:${ETCD_CLIENT_PORT}`),
    "",
  ].join("\n");
}

function checkMembers(args: EtcdMemberArgs): void {
  const { member, members } = args;
  if (!members.some((m) => m.name === member.name && m.ip === member.ip)) {
    throw new Error(`etcd member ${member.name} (${member.ip}) is not one of the cluster members`);
  }
  if (members.length % 2 === 0) {
    throw new Error(
      `etcd needs an odd number of members to keep a quorum through failures (got ${members.length})`,
    );
  }
}

const peerUrlOf = (member: NodeAddress) => `https://${member.ip}:${ETCD_PEER_PORT}`;

/**
 * The etcd command line of one member. How it joins (`--initial-cluster` and
 * `--initial-cluster-state`) is not on it: etcdJoinCommand decides that at each start, from what
 * the other members say, and etcd reads it from the environment (ETCD_INITIAL_CLUSTER,
 * ETCD_INITIAL_CLUSTER_STATE), only when its data directory is empty.
 */
export function etcdCommand(args: EtcdMemberArgs): string[] {
  const { member } = args;
  checkMembers(args);
  const files = args.files ?? defaultEtcdFiles(member.name);
  const peerUrl = peerUrlOf(member);
  return [
    args.binary ?? `${BIN_DIR}/etcd`,
    ...flags({
      name: member.name,
      "data-dir": args.dataDir ?? NODE_PATHS.etcdDataDir,
      "listen-client-urls": [
        `https://${member.ip}:${ETCD_CLIENT_PORT}`,
        `https://127.0.0.1:${ETCD_CLIENT_PORT}`,
      ],
      "advertise-client-urls": `https://${member.ip}:${ETCD_CLIENT_PORT}`,
      "listen-peer-urls": peerUrl,
      "initial-advertise-peer-urls": peerUrl,
      "initial-cluster-token": args.clusterToken,
      "heartbeat-interval": args.timing?.heartbeatIntervalMs,
      "election-timeout": args.timing?.electionTimeoutMs,
      // Plain HTTP, loopback only: /health and /metrics for local probes without a client cert.
      "listen-metrics-urls": `http://127.0.0.1:${ETCD_METRICS_PORT}`,
      "client-cert-auth": true,
      "trusted-ca-file": files.trustedCa,
      "cert-file": files.cert,
      "key-file": files.key,
      "peer-client-cert-auth": true,
      "peer-trusted-ca-file": files.trustedCa,
      "peer-cert-file": files.peerCert,
      "peer-key-file": files.peerKey,
      "tls-min-version": "TLS1.2",
      // etcd 3.6 turned the old --experimental-*-check flags into feature gates (3.7 drops the
      // flags): check a member's data against its peers at start, and compacted hashes later.
      "feature-gates": ["InitialCorruptCheck=true", "CompactHashCheck=true"],
      logger: "zap",
      "log-outputs": "stderr",
    }),
  ];
}

/** How etcd-join.sh and etcd-member.sh reach the cluster: CA, client pair and etcdctl. */
function etcdctlOptions(trustedCa: string, join: EtcdJoinFiles): string[] {
  return [
    "--cacert",
    trustedCa,
    "--cert",
    join.clientCert,
    "--key",
    join.clientKey,
    "--etcdctl",
    join.etcdctl,
  ];
}

/**
 * The etcd-join.sh command line of one member (the unit's ExecStartPre): a member with data
 * starts as it was; one without joins the planned cluster if it is still forming (or nobody
 * else answers), else it is added to the cluster the others have (after its old entry, when
 * its data is gone, is removed).
 */
export function etcdJoinCommand(args: EtcdMemberArgs): string[] {
  const { member } = args;
  checkMembers(args);
  const join = joinFilesOf(args);
  const files = args.files ?? defaultEtcdFiles(member.name);
  return [
    "/bin/bash",
    join.script,
    "--name",
    member.name,
    "--peer-url",
    peerUrlOf(member),
    "--data-dir",
    args.dataDir ?? NODE_PATHS.etcdDataDir,
    "--members",
    join.membersFile,
    "--env-file",
    join.envFile,
    ...etcdctlOptions(files.trustedCa, join),
  ];
}

/**
 * The etcd-member.sh promote command line of one member (the unit's ExecStartPost): a member
 * that joined a running cluster as a learner becomes a voting member once it has caught up.
 */
export function etcdPromoteCommand(args: EtcdMemberArgs): string[] {
  const { member } = args;
  const join = joinFilesOf(args);
  const files = args.files ?? defaultEtcdFiles(member.name);
  return [
    "/bin/bash",
    join.memberScript,
    "promote",
    "--name",
    member.name,
    "--endpoint",
    `https://${member.ip}:${ETCD_CLIENT_PORT}`,
    "--members",
    join.membersFile,
    ...etcdctlOptions(files.trustedCa, join),
  ];
}

/**
 * The etcd-member.sh leave command line of a member that leaves a running cluster (a control
 * plane fewer): the same on every member, which it finds by its host name; the cluster through
 * the local member, or any other it planned. Pure.
 */
export function etcdLeaveCommand(): string[] {
  const join = defaultEtcdJoinFiles();
  return [
    "bash",
    join.memberScript,
    "leave",
    "--endpoint",
    `https://127.0.0.1:${ETCD_CLIENT_PORT}`,
    "--members",
    join.membersFile,
    ...etcdctlOptions(CA_FILES["etcd-ca"].cert, join),
  ];
}

export function etcdUnit(args: EtcdMemberArgs): ServiceUnit {
  return {
    unit: {
      description: `etcd member ${args.member.name}`,
      documentation: ["https://etcd.io/docs/"],
      wants: ["network-online.target"],
      after: ["network-online.target"],
    },
    service: {
      // Ready (READY=1) only once the member has joined a quorum: the first member of a new
      // cluster waits for the others, however slowly they boot, instead of being killed after
      // systemd's default 90 s; node-step.sh starts it without blocking.
      type: "notify",
      timeoutStartSec: "infinity",
      execStartPre: [etcdJoinCommand(args)],
      // systemd reads the file before each command, ExecStartPre's too: "-" lets that first one
      // run before the file exists (without it the unit fails with result 'resources').
      environmentFile: `-${joinFilesOf(args).envFile}`,
      execStart: etcdCommand(args),
      // A learner (a member that joined a running cluster) is active once it votes.
      execStartPost: [etcdPromoteCommand(args)],
      restart: "always",
      restartSec: 5,
      limitNoFile: 65536,
      cpuWeight: CONTROL_PLANE_CPU_WEIGHT,
      // systemd creates /var/lib/etcd with 0700 before start, which etcd checks for.
      stateDirectory: { names: ["etcd"], mode: "0700" },
      // /run/etcd, for etcd-join.sh's answer (NODE_PATHS.etcdJoinEnv).
      runtimeDirectory: ["etcd"],
    },
  };
}

export function renderEtcdUnit(args: EtcdMemberArgs): string {
  return renderServiceUnit(etcdUnit(args));
}

/** The etcd units of every control node, keyed by node name. */
export function renderEtcdUnits(plan: AddressPlan, clusterToken: string): Record<string, string> {
  return Object.fromEntries(
    plan.controls.map((member) => [
      member.name,
      renderEtcdUnit({ member, members: plan.controls, clusterToken }),
    ]),
  );
}
