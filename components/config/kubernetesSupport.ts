/**
 * Which versions go together, and which moves between them a running cluster can make. Pure:
 * the config checks refuse a Kubernetes minor the renderers were never checked against and warn
 * about components that do not fit it; the etcd and kube-apiserver steps refuse, at preview, an
 * update that skips a minor or goes back one.
 */

/**
 * End of life of each Kubernetes minor, from https://kubernetes.io/releases/ (patch releases
 * stop on that day). tests/config/kubernetesSupport.test.ts fails once the pinned minor is past
 * its date, so the next end of life is not silent: move `defaultVersions` then, and add the new
 * minor's row here (1.38's, once the release page gives it a date).
 */
export const KUBERNETES_END_OF_LIFE: Readonly<Record<string, string>> = {
  "1.34": "2026-10-27",
  "1.35": "2027-02-28",
  "1.36": "2027-06-28",
  "1.37": "2027-10-28",
};

/** What goes with one Kubernetes minor. */
export interface MinorSupport {
  /** The etcd minor kubeadm installs with it (cmd/kubeadm/app/constants, DefaultEtcdVersion). */
  readonly etcd: string;
  /** The containerd minors containerd's RELEASES.md recommends for it. */
  readonly containerd: readonly string[];
}

/**
 * The Kubernetes minors whose flags and configuration files the renderers were checked against;
 * the e2e run installs the older and upgrades to the newer. crictl and CRI-O follow the
 * Kubernetes minor (the same minor numbers).
 */
export const SUPPORTED_KUBERNETES: Readonly<Record<string, MinorSupport>> = {
  // kubeadm 1.36.5: etcd 3.6.8; containerd v2.3.7 RELEASES.md: 2.3.0+, 2.2.0+.
  "1.36": { etcd: "3.6", containerd: ["2.2", "2.3"] },
  // kubeadm 1.37.2: etcd 3.7.0; containerd v2.4.2 RELEASES.md: 2.4.0+, 2.3.0+.
  "1.37": { etcd: "3.7", containerd: ["2.3", "2.4"] },
};

/**
 * The Kubernetes minors each Cilium minor runs its end-to-end tests on (docs.cilium.io, network
 * requirements: Kubernetes compatibility).
 */
export const CILIUM_TESTED_KUBERNETES: Readonly<Record<string, readonly [string, string]>> = {
  "1.20": ["1.33", "1.36"],
};

/**
 * An etcd minor can be reached only from a recent enough patch of the one before: "make sure
 * that all of your 3.6 members are updated to 3.6.11 or later" (etcd upgrade_3_7).
 */
export const ETCD_LAST_PATCH_BEFORE: Readonly<Record<string, string>> = {
  "3.7": "3.6.11",
};

/** The minor of a version, e.g. "1.36.5" → "1.36". */
export function minorOf(version: string): string {
  return version.split(".").slice(0, 2).join(".");
}

/** -1, 0 or 1 as version a is older than, the same as or newer than b (x.y or x.y.z). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) {
      return Math.sign(d);
    }
  }
  return 0;
}

/** The minor after this one, e.g. "1.36" → "1.37". */
function nextMinor(minor: string): string {
  const [major, m] = minor.split(".").map(Number);
  return `${major}.${m + 1}`;
}

/** Whether a Kubernetes version still gets patch releases on the given day. */
export function supportedOn(version: string, day: Date): boolean {
  const end = KUBERNETES_END_OF_LIFE[minorOf(version)];
  return end !== undefined && day.getTime() < Date.parse(`${end}T00:00:00Z`) + 86_400_000;
}

/** The versions the checks read (HardwayConfig["versions"] has these and more). */
export interface CheckedVersions {
  readonly kubernetes: string;
  readonly etcd: string;
  readonly containerd: string;
  readonly crio: string;
  readonly crictl: string;
  readonly charts: { readonly cilium: { readonly version: string } };
}

const KEY = "hardway:versions";

/** Versions no cluster can be built with: a Kubernetes minor the renderers do not support. */
export function versionProblems(v: Pick<CheckedVersions, "kubernetes">): string[] {
  const minor = minorOf(v.kubernetes);
  if (SUPPORTED_KUBERNETES[minor] !== undefined) {
    return [];
  }
  return [
    `${KEY}.kubernetes ${v.kubernetes}: this program renders the flags and configuration files of Kubernetes ${Object.keys(SUPPORTED_KUBERNETES).join(" and ")} only; pick a release of one of those minors`,
  ];
}

/** The choices that decide which components a cluster installs. */
export interface InstalledComponents {
  readonly cni: string;
  readonly containerRuntime: string;
}

/**
 * Versions that work but may hurt: an end-of-life minor, components of another minor than the
 * one Kubernetes goes with, a Cilium release not tested on this minor; each only for what the
 * cluster installs (containerd and crictl, or CRI-O; Cilium with cni=cilium).
 */
export function versionWarnings(
  v: CheckedVersions,
  installs: InstalledComponents,
  today: Date,
): string[] {
  const warnings: string[] = [];
  const minor = minorOf(v.kubernetes);
  const end = KUBERNETES_END_OF_LIFE[minor];
  if (end !== undefined && !supportedOn(v.kubernetes, today)) {
    warnings.push(
      `${KEY}.kubernetes ${v.kubernetes}: Kubernetes ${minor} reached its end of life on ${end} and gets no more fixes; upgrade one minor at a time`,
    );
  }
  const support = SUPPORTED_KUBERNETES[minor];
  if (support !== undefined) {
    if (minorOf(v.etcd) !== support.etcd) {
      warnings.push(
        `${KEY}.etcd ${v.etcd} with Kubernetes ${minor}: kubeadm ${minor} installs etcd ${support.etcd}; pin an etcd ${support.etcd}.x release`,
      );
    }
    const containerd = installs.containerRuntime === "containerd";
    if (containerd && !support.containerd.includes(minorOf(v.containerd))) {
      warnings.push(
        `${KEY}.containerd ${v.containerd} with Kubernetes ${minor}: containerd recommends ${support.containerd.join(" or ")} for it`,
      );
    }
    for (const name of containerd ? (["crictl"] as const) : (["crio"] as const)) {
      if (minorOf(v[name]) !== minor) {
        warnings.push(
          `${KEY}.${name} ${v[name]} with Kubernetes ${minor}: ${name === "crio" ? "CRI-O" : "crictl"} releases follow the Kubernetes minors; pin a ${minor}.x release`,
        );
      }
    }
  }
  const cilium = minorOf(v.charts.cilium.version);
  const tested = CILIUM_TESTED_KUBERNETES[cilium];
  if (
    installs.cni === "cilium" &&
    (tested === undefined ||
      compareVersions(minor, tested[0]) < 0 ||
      compareVersions(minor, tested[1]) > 0)
  ) {
    warnings.push(
      tested === undefined
        ? `${KEY}.charts.cilium ${v.charts.cilium.version}: no Kubernetes range is known for Cilium ${cilium}; check its compatibility page for Kubernetes ${minor}`
        : `${KEY}.charts.cilium ${v.charts.cilium.version} with Kubernetes ${minor}: Cilium ${cilium} is tested on Kubernetes ${tested[0]} to ${tested[1]}`,
    );
  }
  return warnings;
}

/**
 * Why a running cluster's Kubernetes cannot move from `from` to `to`, or undefined: one minor up
 * at a time, never a minor down (the API servers may already have stored objects in the newer
 * minor's versions). Patches may go either way.
 */
export function kubernetesMoveProblem(from: string, to: string): string | undefined {
  return minorMoveProblem("Kubernetes", from, to);
}

/**
 * Why a running etcd cannot move from `from` to `to`, or undefined: one minor up at a time, from
 * a recent enough patch, never a minor down (a member of the older minor cannot rejoin).
 */
export function etcdMoveProblem(from: string, to: string): string | undefined {
  const problem = minorMoveProblem("etcd", from, to);
  if (problem !== undefined) {
    return problem;
  }
  const before = ETCD_LAST_PATCH_BEFORE[minorOf(to)];
  if (minorOf(from) !== minorOf(to) && before !== undefined && compareVersions(from, before) < 0) {
    return `etcd ${from} → ${to}: etcd ${minorOf(to)} can be reached only from ${before} or later; upgrade to the newest ${minorOf(from)}.x first`;
  }
  return undefined;
}

function minorMoveProblem(what: string, from: string, to: string): string | undefined {
  const a = minorOf(from);
  const b = minorOf(to);
  if (compareVersions(b, a) < 0) {
    return `${what} ${from} → ${to} goes back a minor, which ${what} does not support; stay on ${a}`;
  }
  if (compareVersions(b, nextMinor(a)) > 0) {
    return `${what} ${from} → ${to} skips ${nextMinor(a)}: a minor upgrade goes one minor at a time; upgrade to a ${nextMinor(a)}.x release first`;
  }
  return undefined;
}
