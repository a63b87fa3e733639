/**
 * What the run's cluster services (chapter 7) need from registries and chart repositories, made
 * offline from Go modules, as an air-gapped lab would mirror them:
 *
 * - the programs of their images, built static from their modules (`go build` inside the module
 *   at its version, with its own go.mod and go.sum: nothing replaced, nothing patched), written
 *   as OCI archives under the exact names and tags the CoreDNS objects and the chart use;
 * - the MetalLB chart, packaged from the chart directory inside its module as `helm package`
 *   names it (`<chart>-<version>.tgz`, a gzipped tar with the chart directory at its root);
 * - the registry that serves the images (distribution, the reference OCI registry) and crane,
 *   which pushes them into it.
 *
 * Everything is cached by module version under cacheRoot(): a second run builds nothing.
 *
 * MetalLB runs at METALLB_RUN_VERSION, not at the pin: see there. The NFS provisioner is not made
 * at all: neither its chart nor its image is inside any module the proxy serves.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { corednsImage } from "../../components/addons/coredns";
import { defaultVersions } from "../../components/config/defaults";
import { packagedChartPath } from "../../components/config/charts";
import { REPRODUCIBLE_TAR, writeOciArchive } from "./ociArchives";

/**
 * The MetalLB release the run installs. The pin (chart 0.16.2) cannot be built here: its module
 * requires github.com/metallb/frr-k8s v0.0.27 (0.16.0 and 0.16.1 need v0.0.25), and the proxy
 * serves that module's go.mod but refuses its source; it serves only v0.0.17, v0.0.18 and v0.0.21,
 * which lack a type the frr-k8s BGP code uses. 0.15.3 is the newest release whose go.mod asks for
 * a served frr-k8s (v0.0.21), so its controller and speaker build unchanged, and its chart matches
 * them. The pin stays 0.16.2; the run says which it tested.
 */
export const METALLB_RUN_VERSION = "0.15.3";

/** Why the run's MetalLB is not the pin, for its summary. */
export const METALLB_RUN_REASON = `MetalLB ${METALLB_RUN_VERSION}, not the pinned ${defaultVersions.charts.metallb.version}: the Go module proxy refuses the source of github.com/metallb/frr-k8s v0.0.27, which ${defaultVersions.charts.metallb.version} requires`;

/** The run's `hardway:versions` beyond the pins: its MetalLB chart. */
export const RUN_VERSIONS = { charts: { metallb: { version: METALLB_RUN_VERSION } } } as const;

/** A Go program inside a module at a version. */
export interface GoProgram {
  readonly module: string;
  /** Without the leading "v". */
  readonly version: string;
  /** The main package, relative to the module root ("." for the root). */
  readonly pkg: string;
  /** The binary's name. */
  readonly name: string;
}

const METALLB_MODULE = "go.universe.tf/metallb";

export const PROGRAMS = {
  registry: {
    module: "github.com/distribution/distribution/v3",
    version: "3.1.2",
    pkg: "cmd/registry",
    name: "registry",
  },
  crane: {
    module: "github.com/google/go-containerregistry",
    version: "0.22.1",
    pkg: "cmd/crane",
    name: "crane",
  },
  coredns: {
    module: "github.com/coredns/coredns",
    version: defaultVersions.coredns,
    pkg: ".",
    name: "coredns",
  },
  metallbController: {
    module: METALLB_MODULE,
    version: METALLB_RUN_VERSION,
    pkg: "controller",
    name: "controller",
  },
  metallbSpeaker: {
    module: METALLB_MODULE,
    version: METALLB_RUN_VERSION,
    pkg: "speaker",
    name: "speaker",
  },
} as const satisfies Record<string, GoProgram>;

/** An image the services pull, and the program it runs. */
export interface ServiceImage {
  /** registry/repository:tag, as the pod spec names it. */
  readonly ref: string;
  readonly program: GoProgram;
}

/**
 * The images the run's services pull, under the names the CoreDNS objects and the MetalLB chart
 * give them (the chart's `image.repository` and, with no tag set, its appVersion). Pure.
 */
export function serviceImages(): ServiceImage[] {
  const metallbTag = `v${METALLB_RUN_VERSION}`;
  return [
    { ref: corednsImage(defaultVersions.coredns), program: PROGRAMS.coredns },
    { ref: `quay.io/metallb/controller:${metallbTag}`, program: PROGRAMS.metallbController },
    { ref: `quay.io/metallb/speaker:${metallbTag}`, program: PROGRAMS.metallbSpeaker },
  ];
}

/** The registry an image ref names, and its repository and tag. Pure. */
export function splitRef(ref: string): { registry: string; repository: string; tag: string } {
  const match = /^([^/]+)\/(.+):([^:/]+)$/.exec(ref);
  if (match === null) {
    throw new Error(`expected registry/repository:tag, got ${ref}`);
  }
  return { registry: match[1], repository: match[2], tag: match[3] };
}

/** The registries the run mirrors: every one an image of serviceImages() comes from. Pure. */
export function mirroredRegistries(images: readonly ServiceImage[]): string[] {
  return [...new Set(images.map((i) => splitRef(i.ref).registry))].sort();
}

/**
 * `go build`'s arguments for a program: reproducible paths, no symbol tables (smaller images to
 * push and pull). Each of these modules carries its version in its source. Pure.
 */
export function goBuildArgs(program: GoProgram, out: string): string[] {
  return [
    "build",
    "-trimpath",
    "-ldflags=-s -w",
    "-o",
    out,
    program.pkg === "." ? "." : `./${program.pkg}`,
  ];
}

/** Where a program's binary is cached: one directory per module version. Pure. */
export function programPath(cache: string, program: GoProgram): string {
  return path.join(cache, "go-programs", `${program.module}@v${program.version}`, program.name);
}

const goEnv = () => ({ ...process.env, CGO_ENABLED: "0", GOFLAGS: "-mod=readonly" });

/** The module's source directory in Go's module cache, downloaded through the proxy. */
export function moduleDir(module: string, version: string): string {
  const info = spawnSync("go", ["mod", "download", "-json", `${module}@v${version}`], {
    encoding: "utf8",
    env: goEnv(),
  });
  const parsed = (() => {
    try {
      return JSON.parse(info.stdout) as { Dir?: string; Error?: string };
    } catch {
      return {};
    }
  })();
  if (info.status !== 0 || parsed.Dir === undefined) {
    throw new Error(`cannot download ${module}@v${version}: ${parsed.Error ?? info.stderr.trim()}`);
  }
  return parsed.Dir;
}

/**
 * `go <args>` in `cwd` writing `out`, unless `out` is already there: built under a temporary name
 * and renamed, so a build cut short never passes for a cached one. `progress` hears what was
 * built and how long it took.
 */
export function goBuildOnce(
  out: string,
  what: string,
  args: (tmp: string) => string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv },
  progress: (line: string) => void,
): string {
  if (fs.existsSync(out)) {
    return out;
  }
  const started = Date.now();
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const built = spawnSync("go", args(tmp), {
    cwd: options.cwd,
    encoding: "utf8",
    env: options.env,
    stdio: ["ignore", "inherit", "pipe"],
    timeout: 3_600_000,
  });
  if (built.status !== 0) {
    throw new Error(`go build of ${what} failed:\n${built.stderr.slice(-3000)}`);
  }
  fs.renameSync(tmp, out);
  progress(`built ${what} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return out;
}

/** The program's binary, built unless cached; `progress` hears what is built and how long it took. */
export function buildProgram(
  cache: string,
  program: GoProgram,
  progress: (line: string) => void,
): string {
  const out = programPath(cache, program);
  if (fs.existsSync(out)) {
    return out;
  }
  return goBuildOnce(
    out,
    `${program.name} from ${program.module}@v${program.version}`,
    (tmp) => goBuildArgs(program, tmp),
    { cwd: moduleDir(program.module, program.version), env: goEnv() },
    progress,
  );
}

/** An image of the services as an OCI archive, with the tag its pod spec names. */
export interface ImageArchive {
  readonly ref: string;
  readonly archive: string;
}

/** Every service image as an OCI archive (one static binary each, as upstream ships them). */
export function buildServiceImages(
  cache: string,
  progress: (line: string) => void,
): ImageArchive[] {
  return serviceImages().map((image) => {
    const binary = buildProgram(cache, image.program, progress);
    const archive = `${binary}.oci.tar`;
    if (!fs.existsSync(archive)) {
      writeOciArchive(
        {
          name: image.ref,
          files: [{ path: image.program.name, mode: 0o755, content: fs.readFileSync(binary) }],
          entrypoint: [`/${image.program.name}`],
        },
        archive,
      );
    }
    return { ref: image.ref, archive };
  });
}

/**
 * A chart directory inside a module (`<module>/<parent>/<chart>`), packaged into `chartsDir` as
 * `helm package` names it, unless it is there; returns the file.
 */
export function packageModuleChart(
  chartsDir: string,
  ref: { readonly chart: string; readonly version: string },
  module: { readonly module: string; readonly version: string; readonly parent: string },
): string {
  const out = packagedChartPath(chartsDir, ref);
  if (!fs.existsSync(out)) {
    fs.mkdirSync(chartsDir, { recursive: true });
    const dir = path.join(moduleDir(module.module, module.version), module.parent);
    const tmp = `${out}.tmp-${process.pid}`;
    execFileSync("tar", [...REPRODUCIBLE_TAR, "--mode=u+w", "-czf", tmp, "-C", dir, ref.chart]);
    fs.renameSync(tmp, out);
  }
  return out;
}

/** The MetalLB chart of the run, packaged into `chartsDir` from its module; returns the file. */
export function packageMetallbChart(chartsDir: string): string {
  return packageModuleChart(
    chartsDir,
    { chart: "metallb", version: METALLB_RUN_VERSION },
    { module: METALLB_MODULE, version: METALLB_RUN_VERSION, parent: "charts" },
  );
}
