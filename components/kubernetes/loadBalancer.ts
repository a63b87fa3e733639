/**
 * ldirectord on the gateway: an IPVS virtual server on the API VIP that forwards to every
 * control node by direct routing (`gate`), so replies go straight from the control node to the
 * client. It probes each API server's /readyz over HTTPS and drops a server that stops
 * answering "ok": an API server shutting down fails /readyz first (--shutdown-delay-duration)
 * while it still serves, so clients move before connections break. The probe trusts the system
 * CA store, so the gateway must trust the cluster CA.
 */
import { AddressPlan } from "../network/addressPlan";

/** How ldirectord checks the API servers. */
export interface LdirectordChecks {
  /** Seconds between health checks. @default 1 */
  readonly checkInterval?: number;
  /**
   * Seconds a check's HTTPS request may take; software-emulated control nodes answer slowly.
   * @default 3
   */
  readonly checkTimeout?: number;
  /**
   * Failed checks in a row before a server is dropped: a busy server that misses one check
   * keeps its connections.
   * @default 2
   */
  readonly failureCount?: number;
  /** /readyz checks the probe leaves out (`?exclude=`). @default none */
  readonly readyzExclude?: readonly string[];
}

/**
 * The checks on hardware-accelerated guests, where an API server answers /readyz in
 * milliseconds (its slowest part, etcd-readiness, gives up after 2 s). ldirectord checks the
 * servers of a virtual service one after another, so a server that hangs (its VM gone, its
 * process stopped) costs each round a whole timeout: with 3 s, a round a second and 2 failures
 * it leaves the table within the API server's 15 s shutdown delay, and so does a server failing
 * /readyz behind it (measured in tests/kubernetes/ldirectord.test.ts; with 10 s, every 2 s and
 * 3 failures it took over 30 s, and 4 s every 2 s left a margin of only 2 s).
 */
export const DEFAULT_CHECKS: Required<Omit<LdirectordChecks, "readyzExclude">> = {
  checkInterval: 1,
  checkTimeout: 3,
  failureCount: 2,
};

/**
 * ldirectord's checks on emulated (TCG) VMs. A TLS handshake from a one-vCPU emulated gateway
 * may take 20 s. Each check costs the gateway about half a second of CPU in Perl and TLS, so
 * checking every 2 s kept a quarter of its vCPU busy, taken from the control nodes' host cores
 * (measured: ldirectord 6.5 CPU minutes in 26); every 4 s still drops a failing server within
 * 15 s.
 *
 * They leave etcd's checks out of /readyz: every API server reads the same etcd, so a slow etcd
 * says nothing about which server to send a client to. On emulated guests it is slow for all of
 * them at once: in the HA run all three servers failed `etcd-readiness` (10 s) within four
 * minutes, ldirectord deleted each in turn, and IPVS reset the connections they held (a
 * `pulumi up` failed on "connection reset by peer"). A stopped or shutting-down server still
 * fails the probe (`shutdown`, or no answer).
 *
 * Three failures in a row, not two: on starved guests a check that waits out its 20 s is not
 * rare, and a server dropped for it loses its connections. The price: a hung server stays about
 * three timeouts, a minute.
 */
export const EMULATED_CHECKS: LdirectordChecks = {
  checkTimeout: 20,
  checkInterval: 4,
  failureCount: 3,
  readyzExclude: ["etcd", "etcd-readiness"],
};

/** The probe's request path: /readyz without the checks it leaves out. Pure. */
export function readyzRequest(checks: LdirectordChecks): string {
  const exclude = checks.readyzExclude ?? [];
  return exclude.length === 0
    ? "/readyz"
    : `/readyz?${exclude.map((c) => `exclude=${encodeURIComponent(c)}`).join("&")}`;
}

export interface LdirectordArgs extends LdirectordChecks {
  readonly plan: AddressPlan;
  /** @default "/var/log/ldirectord.log" */
  readonly logFile?: string;
}

/**
 * The lines of ldirectord.cf. Its format is a flat `key=value` list with the virtual service's
 * options indented beneath it; values with spaces are double-quoted.
 */
export function ldirectordConfig(args: LdirectordArgs): string {
  const { plan } = args;
  const global: [string, string | number][] = [
    ["checktimeout", args.checkTimeout ?? DEFAULT_CHECKS.checkTimeout],
    ["negotiatetimeout", args.checkTimeout ?? DEFAULT_CHECKS.checkTimeout],
    ["checkinterval", args.checkInterval ?? DEFAULT_CHECKS.checkInterval],
    ["failurecount", args.failureCount ?? DEFAULT_CHECKS.failureCount],
    // A dead server is removed from the table rather than kept with weight 0.
    ["quiescent", "no"],
    // At each start and reload ldirectord puts a server it does not have in the table yet (a new
    // control plane's, or every one after a restart) in the table, and takes it out again before
    // its first check: with `yes`, it waits for the check instead.
    ["readdquiescent", "yes"],
    ["autoreload", "no"],
    ["logfile", `"${args.logFile ?? "/var/log/ldirectord.log"}"`],
  ];
  const virtual: [string, string | number][] = [
    ["servicename", "kubernetes-api"],
    ...plan.controls.map((c): [string, string] => ["real", `${c.ip}:${plan.apiPort} gate`]),
    ["scheduler", "wrr"],
    ["protocol", "tcp"],
    // With one control plane there is no other server to send clients to: dropping it when a
    // check fails (a slow /readyz on a loaded guest) would only turn a slow API into a refused
    // one. `on` keeps it in the table unchecked.
    ...(plan.controls.length > 1
      ? ([
          ["checktype", "negotiate"],
          ["service", "https"],
          ["request", `"${readyzRequest(args)}"`],
          ["receive", '"ok"'],
        ] as [string, string][])
      : ([["checktype", "on"]] as [string, string][])),
  ];
  return [
    ...global.map(([k, v]) => `${k}=${v}`),
    "",
    `virtual=${plan.apiVip}:${plan.apiPort}`,
    ...virtual.map(([k, v]) => `\t${k}=${v}`),
    "",
  ].join("\n");
}
