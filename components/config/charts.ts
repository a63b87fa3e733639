/**
 * Which charts a stack installs and where Helm finds each: pure functions of the configuration,
 * shared by the host checks (a local chart must be there before anything changes) and the
 * Helm releases.
 */
import * as path from "node:path";
import { HardwayConfig, Service, Versions } from "./schema";

export type Charts = Versions["charts"];
export type ChartName = keyof Charts;
export type ChartRef = Charts[ChartName];

/** The charts a configuration installs: Cilium as the CNI, and the services that are charts. */
export function installedCharts(
  config: Pick<HardwayConfig, "cni" | "services" | "stopAfter">,
): ChartName[] {
  if (config.stopAfter !== "services") {
    return [];
  }
  const services: readonly Service[] = config.services;
  return [
    ...(config.cni === "cilium" ? (["cilium"] as const) : []),
    ...(["metallb", "nfsProvisioner"] as const).filter((s) => services.includes(s)),
  ];
}

/** Where Helm finds a chart: the arguments of a Release that name it. */
export interface ChartSource {
  /** A chart name (with `repo`), an `oci://` reference, or the path of a packaged chart. */
  readonly chart: string;
  readonly version?: string;
  /** An http(s) Helm repository; absent for OCI and local charts. */
  readonly repo?: string;
}

/**
 * A chart's source from its pinned reference and the chart mirror: an http(s) repository is
 * searched by name and version; an `oci://` registry path holds the chart as `<path>/<chart>`
 * with the version as its tag; a local directory holds `<chart>-<version>.tgz`, the name
 * `helm package` gives it (a local file is loaded as it is, so no version is passed).
 */
export function chartSource(ref: ChartRef, chartMirror: string): ChartSource {
  const repository = chartMirror || ref.repository;
  if (repository.startsWith("oci://")) {
    return { chart: `${repository.replace(/\/+$/, "")}/${ref.chart}`, version: ref.version };
  }
  if (repository.startsWith("/")) {
    return { chart: packagedChartPath(repository, ref) };
  }
  return { chart: ref.chart, version: ref.version, repo: repository };
}

/** `<directory>/<chart>-<version>.tgz`, as `helm package` names a packaged chart. */
export function packagedChartPath(directory: string, ref: Pick<ChartRef, "chart" | "version">) {
  return path.join(directory, `${ref.chart}-${ref.version}.tgz`);
}
