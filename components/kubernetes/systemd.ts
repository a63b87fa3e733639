/**
 * systemd unit files rendered from a structured object, so every unit the cluster installs has
 * the same shape and every ExecStart argument is quoted the same way.
 */

export type UnitValue = string | number | boolean;

/**
 * CPUWeight of etcd and kube-apiserver on a control node, against the node agents beside them
 * (kubelet, containerd, kube-proxy, the scheduler and controller manager, journald, sshd: 100).
 * An API server that starts again on a running cluster must finish post-start hooks within
 * limits fixed in its code (30 s for the bootstrap RBAC roles and PriorityClasses, 1 minute for
 * the first Service IP and port repair) and exits when it does not. In the HA e2e's run 9 a
 * control node back from failover got 27-33 % of its one emulated vCPU for its API server, which
 * missed those limits seven times in 33 minutes; with this weight set by hand its next start
 * passed them. The one control node of the small e2e (two vCPUs, 0.8 of a host core while both
 * workers run) stopped answering `/healthz` for 20 minutes in one run: its API server on 42 % of
 * a vCPU timed out its handlers, while the kubelet, controller manager, MetalLB's speaker,
 * containerd and CoreDNS beside it took more than that together.
 */
export const CONTROL_PLANE_CPU_WEIGHT = 1000;

/** A command line: the executable first, then one argument per element. */
export type CommandLine = readonly string[];

export interface ServiceUnit {
  readonly unit: {
    readonly description: string;
    readonly documentation?: readonly string[];
    readonly after?: readonly string[];
    readonly wants?: readonly string[];
    readonly requires?: readonly string[];
  };
  readonly service: {
    /** @default "simple" */
    readonly type?: "simple" | "exec" | "notify" | "oneshot";
    /** Seconds, or "infinity". @default systemd's (90 s) */
    readonly timeoutStartSec?: number | "infinity";
    /** Seconds, or "infinity". @default systemd's (90 s) */
    readonly timeoutStopSec?: number | "infinity";
    readonly execStartPre?: readonly CommandLine[];
    readonly execStart: CommandLine;
    /** Run once the service is started (for Type=notify: once it said READY=1). */
    readonly execStartPost?: readonly CommandLine[];
    readonly environment?: Readonly<Record<string, string>>;
    /**
     * Read before each command runs, ExecStartPre's included, so an ExecStartPre may write it
     * for ExecStart if it is optional (a leading "-"): a missing one fails the start.
     */
    readonly environmentFile?: string;
    /** @default "always" */
    readonly restart?: "always" | "on-failure" | "no";
    /** Seconds. @default 5 */
    readonly restartSec?: number;
    readonly limitNoFile?: number | "infinity";
    readonly limitNProc?: number | "infinity";
    readonly tasksMax?: number | "infinity";
    readonly delegate?: boolean;
    readonly killMode?: "control-group" | "process" | "mixed";
    readonly oomScoreAdjust?: number;
    /**
     * The unit's share of the CPU against its siblings in system.slice when they all want more
     * than there is (cgroup v2 cpu.weight, 1-10000). @default systemd's (100)
     */
    readonly cpuWeight?: number;
    /** Directories under /var/lib that systemd creates before start, with StateDirectoryMode. */
    readonly stateDirectory?: { readonly names: readonly string[]; readonly mode: string };
    /** Directories under /run that systemd creates before start and removes after stop. */
    readonly runtimeDirectory?: readonly string[];
    /** Directories under /var/log that systemd creates before start. */
    readonly logsDirectory?: readonly string[];
  };
  /** @default { wantedBy: ["multi-user.target"] } */
  readonly install?: { readonly wantedBy: readonly string[] };
}

/**
 * Quotes one argument for an Exec*= line. systemd expands `%` specifiers and `$` variables in
 * Exec lines, so both are doubled; anything with whitespace, quotes or backslashes is quoted.
 */
export function quoteExecArg(arg: string): string {
  const escaped = arg.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (escaped !== "" && !/[\s"'\\;]/.test(escaped)) {
    return escaped;
  }
  return `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function commandLine(command: CommandLine): string {
  if (command.length === 0 || !command[0].startsWith("/")) {
    throw new Error(
      `a systemd Exec line needs an absolute executable path (got ${JSON.stringify(command[0])})`,
    );
  }
  return command.map(quoteExecArg).join(" \\\n  ");
}

function line(key: string, value: UnitValue | undefined): string[] {
  if (value === undefined) {
    return [];
  }
  return [`${key}=${typeof value === "boolean" ? (value ? "yes" : "no") : String(value)}`];
}

function list(key: string, values: readonly string[] | undefined): string[] {
  return values === undefined || values.length === 0 ? [] : [`${key}=${values.join(" ")}`];
}

/** Renders a service unit; ExecStart puts one argument per continuation line. */
export function renderServiceUnit(spec: ServiceUnit): string {
  const s = spec.service;
  const unit = [
    "[Unit]",
    ...line("Description", spec.unit.description),
    ...list("Documentation", spec.unit.documentation),
    ...list("Wants", spec.unit.wants),
    ...list("Requires", spec.unit.requires),
    ...list("After", spec.unit.after),
  ];
  const environment = Object.entries(s.environment ?? {}).map(
    ([name, value]) => `Environment=${quoteExecArg(`${name}=${value}`)}`,
  );
  const service = [
    "[Service]",
    ...line("Type", s.type ?? "simple"),
    ...line("TimeoutStartSec", s.timeoutStartSec),
    ...line("TimeoutStopSec", s.timeoutStopSec),
    ...environment,
    ...line("EnvironmentFile", s.environmentFile),
    ...(s.execStartPre ?? []).map((pre) => `ExecStartPre=${commandLine(pre)}`),
    `ExecStart=${commandLine(s.execStart)}`,
    ...(s.execStartPost ?? []).map((post) => `ExecStartPost=${commandLine(post)}`),
    ...line("Restart", s.restart ?? "always"),
    ...line("RestartSec", s.restartSec ?? 5),
    ...line("LimitNOFILE", s.limitNoFile),
    ...line("LimitNPROC", s.limitNProc),
    ...line("TasksMax", s.tasksMax),
    ...line("Delegate", s.delegate),
    ...line("KillMode", s.killMode),
    ...line("OOMScoreAdjust", s.oomScoreAdjust),
    ...line("CPUWeight", s.cpuWeight),
    ...list("StateDirectory", s.stateDirectory?.names),
    ...line("StateDirectoryMode", s.stateDirectory?.mode),
    ...list("RuntimeDirectory", s.runtimeDirectory),
    ...list("LogsDirectory", s.logsDirectory),
  ];
  const install = [
    "[Install]",
    ...list("WantedBy", (spec.install ?? { wantedBy: ["multi-user.target"] }).wantedBy),
  ];
  return [unit, service, install].map((section) => section.join("\n")).join("\n\n") + "\n";
}

export type FlagValue = string | number | boolean | readonly string[];

/**
 * `--name=value` arguments in the order given; arrays are comma-joined (the Kubernetes and etcd
 * list syntax) and undefined values are left out.
 */
export function flags(values: Readonly<Record<string, FlagValue | undefined>>): string[] {
  return Object.entries(values)
    .filter((entry): entry is [string, FlagValue] => entry[1] !== undefined)
    .map(([name, value]) => `--${name}=${Array.isArray(value) ? value.join(",") : String(value)}`);
}
