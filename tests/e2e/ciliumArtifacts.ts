/**
 * What the Cilium variant of the run (`npm run e2e -- --cilium`) needs from registries and chart
 * repositories, made offline from the github.com/cilium/cilium module at the pinned chart's
 * version, as an air-gapped lab would mirror it:
 *
 * - the agent's and the generic operator's programs, built from the module's packages as its
 *   Makefiles name and flag them. The module cannot be built inside itself (`go build` there wants
 *   its vendor directory, which module zips leave out), so a small module of our own in the cache
 *   requires it and builds its packages. Two of its dependencies are refused by the Go module
 *   proxy and replaced (CILIUM_REPLACES says which and why);
 * - the agent's image, quay.io/cilium/cilium:v<version>: a Debian root file system with clang and
 *   the network tools the agent runs (build-cilium-rootfs.sh), under the programs, the BPF sources
 *   the agent compiles on each node (`make install-bpf`'s list) and the scripts the chart's init
 *   containers run, where upstream's image has them;
 * - the operator's image, quay.io/cilium/operator-generic:v<version>: its one static program;
 * - the chart, packaged from install/kubernetes/cilium in the module.
 *
 * Not made: cilium-envoy (C++, no Go module), so the run turns the L7 proxy off (RUN_VALUES).
 * Everything is cached by version under the e2e cache: a second run builds nothing.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultVersions } from "../../components/config/defaults";
import { writeOciArchive } from "./ociArchives";
import { ImageArchive, goBuildOnce, moduleDir, packageModuleChart } from "./serviceArtifacts";

export const CILIUM_MODULE = "github.com/cilium/cilium";
/** The chart's version is Cilium's own. */
export const CILIUM_VERSION = defaultVersions.charts.cilium.version;

/**
 * The module's dependencies the Go module proxy refuses, and what stands in for each:
 * - github.com/osrg/gobgp/v4 at the unreleased commit Cilium pins (its zip is refused): the
 *   release v4.7.0, which has the API Cilium's BGP control plane uses. The run does not use BGP.
 * - sigs.k8s.io/mcs-api/controllers v0.5.2 (refused): a stub module of our own, MCS_API_STUB, with
 *   the one constant Cilium takes from it, used only by its multi-cluster services and Gateway
 *   API code, neither of which the run enables.
 */
export const CILIUM_REPLACES: Readonly<Record<string, string>> = {
  "github.com/osrg/gobgp/v4": "github.com/osrg/gobgp/v4 v4.7.0",
  "sigs.k8s.io/mcs-api/controllers": "./mcs-api-controllers",
};

/** The stub module's files (see CILIUM_REPLACES), by path inside the build module. */
export const MCS_API_STUB: Readonly<Record<string, string>> = {
  "mcs-api-controllers/go.mod": "module sigs.k8s.io/mcs-api/controllers\n\ngo 1.22\n",
  "mcs-api-controllers/controllers.go": [
    "// Package controllers stands in for sigs.k8s.io/mcs-api/controllers, whose module the Go",
    "// module proxy refuses: only the annotation the multi-cluster services code reads.",
    "package controllers",
    "",
    "// DerivedServiceAnnotation names the Service derived from a ServiceImport.",
    'const DerivedServiceAnnotation = "multicluster.kubernetes.io/derived-service"',
    "",
  ].join("\n"),
};

/** The go.mod of our build module: Cilium at `version`, with CILIUM_REPLACES. Pure. */
export function buildModuleGoMod(version: string): string {
  return [
    "module hardway.test/cilium-build",
    "",
    "go 1.26.0",
    "",
    `require ${CILIUM_MODULE} v${version}`,
    "",
    ...Object.entries(CILIUM_REPLACES).map(([from, to]) => `replace ${from} => ${to}`),
    "",
  ].join("\n");
}

/** One of Cilium's programs: its package, its name, extra build tags, where the image has it. */
export interface CiliumProgram {
  readonly pkg: string;
  readonly name: string;
  readonly tags: readonly string[];
  /** Its path in the image. */
  readonly dest: string;
}

const inUsrBin = (pkg: string, name: string, tags: readonly string[] = []): CiliumProgram => ({
  pkg,
  name,
  tags,
  dest: `/usr/bin/${name}`,
});

/**
 * The agent image's programs (the Makefile's SUBDIRS_CILIUM_CONTAINER, less the bug tool, the
 * hubble CLI and envoy's bootstrap helper, which neither the chart's containers nor the agent
 * run), and the generic operator (`cilium-operator-generic`, tag ipam_provider_operator).
 */
export const CILIUM_PROGRAMS = {
  agent: [
    inUsrBin("daemon", "cilium-agent"),
    inUsrBin("cilium-dbg", "cilium-dbg"),
    inUsrBin("cilium-health", "cilium-health"),
    inUsrBin("cilium-health/responder", "cilium-health-responder"),
    inUsrBin("tools/mount", "cilium-mount"),
    inUsrBin("tools/sysctlfix", "cilium-sysctlfix"),
    { pkg: "plugins/cilium-cni", name: "cilium-cni", tags: [], dest: "/opt/cni/bin/cilium-cni" },
  ],
  operator: inUsrBin("operator", "cilium-operator-generic", ["ipam_provider_operator"]),
} as const;

/**
 * `go build`'s arguments for a program, as Cilium's Makefile.defs builds it: the `osusergo` tag
 * and its own, its version stamped in, symbol tables left out. Pure.
 */
export function ciliumBuildArgs(program: CiliumProgram, version: string, out: string): string[] {
  return [
    "build",
    "-trimpath",
    `-tags=${["osusergo", ...program.tags].join(",")}`,
    `-ldflags=-s -w -X ${CILIUM_MODULE}/pkg/version.ciliumVersion=${version}`,
    "-o",
    out,
    `${CILIUM_MODULE}/${program.pkg}`,
  ];
}

/** The run's image names, as the chart builds them with no digests (the chart's own default). */
export function ciliumImageRefs(version: string): { agent: string; operator: string } {
  return {
    agent: `quay.io/cilium/cilium:v${version}`,
    operator: `quay.io/cilium/operator-generic:v${version}`,
  };
}

/**
 * The chart values the run lays over hardway's (hardway:chartValues.cilium): no L7 proxy, since
 * no cilium-envoy image can be made here.
 */
export const RUN_VALUES = { envoy: { enabled: false }, l7Proxy: false } as const;

/**
 * The BPF sources the agent compiles at run time, as `make install-bpf` selects them: every file
 * under bpf/ but the tests, the complexity tests, custom programs, the Makefiles, .gitignore and
 * what .gitignore names (compiler output). Relative to the module root, sorted. Pure.
 */
export function bpfSources(files: readonly string[]): string[] {
  const ignored = [
    /^bpf\/\.gitignore$/,
    /^bpf\/(tests|complexity-tests|custom)\//,
    /^bpf\/Makefile(\.bpf)?$/,
    /\.(i|s|o\.tmp)$/,
    /^bpf\/\.rebuild_all$/,
    /(^|\/)compile_commands\.json$/,
  ];
  return files
    .filter((f) => f.startsWith("bpf/") && !ignored.some((r) => r.test(f)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The scripts the chart's init containers and hooks run, from the module to the image's root. */
export const CILIUM_SCRIPTS: Readonly<Record<string, string>> = {
  "images/cilium/init-container.sh": "/init-container.sh",
  "plugins/cilium-cni/install-plugin.sh": "/install-plugin.sh",
  "plugins/cilium-cni/cni-uninstall.sh": "/cni-uninstall.sh",
};

/** Upstream's image environment (images/cilium/Dockerfile), PATH spelt out. */
export const CILIUM_ENV = [
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  "HUBBLE_SERVER=unix:///var/run/cilium/hubble.sock",
  "INITSYSTEM=SYSTEMD",
];

/** Every file under `root`/`dir`, as paths relative to `root`. */
export function listFiles(root: string, dir = ""): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = dir === "" ? entry.name : `${dir}/${entry.name}`;
    return entry.isDirectory() ? listFiles(root, relative) : [relative];
  });
}

/**
 * Cilium's programs, built unless cached, by path in the image (`progress` hears what was built
 * and how long it took). Builds in `cache`/cilium/v<version>/build, the module of our own.
 */
export function buildCiliumPrograms(
  cache: string,
  progress: (line: string) => void,
): Record<string, string> {
  const base = path.join(cache, "cilium", `v${CILIUM_VERSION}`);
  const build = path.join(base, "build");
  fs.mkdirSync(build, { recursive: true });
  const goMod = path.join(build, "go.mod");
  if (!fs.existsSync(goMod) || !fs.readFileSync(goMod, "utf8").includes("require")) {
    fs.writeFileSync(goMod, buildModuleGoMod(CILIUM_VERSION));
  }
  for (const [file, content] of Object.entries(MCS_API_STUB)) {
    fs.mkdirSync(path.dirname(path.join(build, file)), { recursive: true });
    fs.writeFileSync(path.join(build, file), content);
  }
  const built: Record<string, string> = {};
  for (const program of [...CILIUM_PROGRAMS.agent, CILIUM_PROGRAMS.operator]) {
    built[program.dest] = goBuildOnce(
      path.join(base, "bin", program.name),
      `${program.name} from ${CILIUM_MODULE}@v${CILIUM_VERSION}`,
      (tmp) => ciliumBuildArgs(program, CILIUM_VERSION, tmp),
      // -mod=mod: our module's go.sum is filled from the proxy as the build resolves it.
      { cwd: build, env: { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-mod=mod" } },
      progress,
    );
  }
  return built;
}

/**
 * The agent's and the operator's images as OCI archives (see the header), built unless cached.
 * `rootfs` is build-cilium-rootfs.sh's layer.
 */
export function buildCiliumImages(
  cache: string,
  rootfs: string,
  progress: (line: string) => void,
): ImageArchive[] {
  const programs = buildCiliumPrograms(cache, progress);
  const refs = ciliumImageRefs(CILIUM_VERSION);
  const dir = path.join(cache, "cilium", `v${CILIUM_VERSION}`);
  const agent = path.join(dir, `cilium-${path.basename(rootfs, ".tar")}.oci.tar`);
  if (!fs.existsSync(agent)) {
    const started = Date.now();
    const module = moduleDir(CILIUM_MODULE, CILIUM_VERSION);
    const bpf = bpfSources(listFiles(module, "bpf"));
    writeOciArchive(
      {
        name: refs.agent,
        baseLayers: [rootfs],
        files: [
          ...CILIUM_PROGRAMS.agent.map((p) => ({
            path: p.dest,
            mode: 0o755,
            content: fs.readFileSync(programs[p.dest]),
          })),
          // cilium-dbg's old name, which the chart's hooks still call.
          { path: "/usr/bin/cilium", mode: 0o777, link: "cilium-dbg" },
          ...bpf.map((f) => ({
            path: `/var/lib/cilium/${f}`,
            mode: 0o644,
            content: fs.readFileSync(path.join(module, f)),
          })),
          ...Object.entries(CILIUM_SCRIPTS).map(([from, to]) => ({
            path: to,
            mode: 0o755,
            content: fs.readFileSync(path.join(module, from)),
          })),
        ],
        entrypoint: ["/usr/bin/cilium-dbg"],
        env: CILIUM_ENV,
      },
      agent,
    );
    progress(`made ${refs.agent} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  const operatorProgram = CILIUM_PROGRAMS.operator;
  const operator = path.join(dir, "operator-generic.oci.tar");
  if (!fs.existsSync(operator)) {
    writeOciArchive(
      {
        name: refs.operator,
        files: [
          {
            path: operatorProgram.dest,
            mode: 0o755,
            content: fs.readFileSync(programs[operatorProgram.dest]),
          },
        ],
        entrypoint: [operatorProgram.dest],
        env: [CILIUM_ENV[0]],
      },
      operator,
    );
  }
  return [
    { ref: refs.agent, archive: agent },
    { ref: refs.operator, archive: operator },
  ];
}

/** The Cilium chart, packaged into `chartsDir` from its module; returns the file. */
export function packageCiliumChart(chartsDir: string): string {
  return packageModuleChart(
    chartsDir,
    { chart: "cilium", version: CILIUM_VERSION },
    { module: CILIUM_MODULE, version: CILIUM_VERSION, parent: "install/kubernetes" },
  );
}
