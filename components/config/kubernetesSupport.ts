/**
 * End of life of each Kubernetes minor, from https://kubernetes.io/releases/ (patch releases
 * stop on that day). tests/config/kubernetesSupport.test.ts fails once the pinned minor is past
 * its date, so the next end of life is not silent: move `defaultVersions` then, and add the new
 * minor's row here.
 */
export const KUBERNETES_END_OF_LIFE: Readonly<Record<string, string>> = {
  "1.34": "2026-10-27",
  "1.35": "2027-02-28",
  "1.36": "2027-06-28",
  "1.37": "2027-10-28",
};

/** The minor of a version, e.g. "1.36.5" → "1.36". */
export function minorOf(version: string): string {
  return version.split(".").slice(0, 2).join(".");
}

/** Whether a Kubernetes version still gets patch releases on the given day. */
export function supportedOn(version: string, day: Date): boolean {
  const end = KUBERNETES_END_OF_LIFE[minorOf(version)];
  return end !== undefined && day.getTime() < Date.parse(`${end}T00:00:00Z`) + 86_400_000;
}
