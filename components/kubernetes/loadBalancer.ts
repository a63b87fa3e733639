/**
 * ldirectord on the gateway: an IPVS virtual server on the API VIP that forwards to every
 * control node by direct routing (`gate`), so replies go straight from the control node to the
 * client. It probes each API server's /healthz over HTTPS and drops a server that stops
 * answering "ok". The probe trusts the system CA store, so the gateway must trust the cluster CA.
 */
import { AddressPlan } from "../network/addressPlan";

export interface LdirectordArgs {
  readonly plan: AddressPlan;
  /** Seconds between health checks. @default 2 */
  readonly checkInterval?: number;
  /** Seconds before a check counts as failed. @default 5 */
  readonly checkTimeout?: number;
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
    ["checktimeout", args.checkTimeout ?? 5],
    ["checkinterval", args.checkInterval ?? 2],
    // A dead server is removed from the table rather than kept with weight 0.
    ["quiescent", "no"],
    ["autoreload", "no"],
    ["logfile", `"${args.logFile ?? "/var/log/ldirectord.log"}"`],
  ];
  const virtual: [string, string | number][] = [
    ["servicename", "kubernetes-api"],
    ...plan.controls.map((c): [string, string] => ["real", `${c.ip}:${plan.apiPort} gate`]),
    ["scheduler", "wrr"],
    ["protocol", "tcp"],
    ["checktype", "negotiate"],
    ["service", "https"],
    ["request", '"/healthz"'],
    ["receive", '"ok"'],
  ];
  return [
    ...global.map(([k, v]) => `${k}=${v}`),
    "",
    `virtual=${plan.apiVip}:${plan.apiPort}`,
    ...virtual.map(([k, v]) => `\t${k}=${v}`),
    "",
  ].join("\n");
}
