/**
 * The Cilium variant's recipe, checked against the Cilium module itself (downloaded through the
 * Go module proxy, as the run downloads it): the packages and scripts it names exist there, the
 * BPF sources are make install-bpf's, the image names are the ones the chart's templates build,
 * and the programs' build module requires exactly the pinned module.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { defaultVersions } from "../../components/config/defaults";
import {
  CILIUM_MODULE,
  CILIUM_PROGRAMS,
  CILIUM_REPLACES,
  CILIUM_SCRIPTS,
  CILIUM_VERSION,
  MCS_API_STUB,
  RUN_VALUES,
  bpfSources,
  buildModuleGoMod,
  ciliumBuildArgs,
  ciliumImageRefs,
  listFiles,
} from "./ciliumArtifacts";

describe("the build module", () => {
  it("requires the pinned chart's Cilium and replaces only the refused dependencies", () => {
    expect(CILIUM_VERSION).toBe(defaultVersions.charts.cilium.version);
    expect(buildModuleGoMod("1.20.2")).toBe(
      [
        "module hardway.test/cilium-build",
        "",
        "go 1.26.0",
        "",
        "require github.com/cilium/cilium v1.20.2",
        "",
        "replace github.com/osrg/gobgp/v4 => github.com/osrg/gobgp/v4 v4.7.0",
        "replace sigs.k8s.io/mcs-api/controllers => ./mcs-api-controllers",
        "",
      ].join("\n"),
    );
  });

  it("points the stub's replace at the stub's own module, which declares the package it replaces", () => {
    const dir = CILIUM_REPLACES["sigs.k8s.io/mcs-api/controllers"].replace(/^\.\//, "");
    expect(MCS_API_STUB[`${dir}/go.mod`]).toMatch(/^module sigs\.k8s\.io\/mcs-api\/controllers\n/);
    expect(MCS_API_STUB[`${dir}/controllers.go`]).toMatch(/^package controllers$/m);
  });

  it("builds each program as Cilium's Makefiles do: osusergo, its own tags, its version", () => {
    expect(ciliumBuildArgs(CILIUM_PROGRAMS.operator, "1.20.2", "/out/op")).toEqual([
      "build",
      "-trimpath",
      "-tags=osusergo,ipam_provider_operator",
      "-ldflags=-s -w -X github.com/cilium/cilium/pkg/version.ciliumVersion=1.20.2",
      "-o",
      "/out/op",
      "github.com/cilium/cilium/operator",
    ]);
  });

  it("turns off only the L7 proxy, whose envoy image cannot be built here", () => {
    expect(RUN_VALUES).toEqual({ envoy: { enabled: false }, l7Proxy: false });
  });
});

describe("bpfSources", () => {
  it("keeps what make install-bpf installs and leaves out tests, Makefiles and compiler output", () => {
    expect(
      bpfSources([
        "bpf/bpf_lxc.c",
        "bpf/lib/common.h",
        "bpf/.gitignore",
        "bpf/Makefile",
        "bpf/Makefile.bpf",
        "bpf/tests/x.c",
        "bpf/complexity-tests/a/b.txt",
        "bpf/custom/bytecount.h",
        "bpf/bpf_lxc.i",
        "bpf/bpf_lxc.s",
        "bpf/include/linux/bpf.h",
        "daemon/main.go",
      ]),
    ).toEqual(["bpf/bpf_lxc.c", "bpf/include/linux/bpf.h", "bpf/lib/common.h"]);
  });
});

/** The module's source directory, downloaded through the proxy (as the run downloads it). */
function ciliumModule(): string {
  const found = spawnSync(
    "go",
    ["mod", "download", "-json", `${CILIUM_MODULE}@v${CILIUM_VERSION}`],
    {
      encoding: "utf8",
      timeout: 600_000,
    },
  );
  if (found.status !== 0) {
    throw new Error(`go mod download ${CILIUM_MODULE} failed: ${found.stdout}${found.stderr}`);
  }
  return (JSON.parse(found.stdout) as { Dir: string }).Dir;
}

describe("the recipe against the Cilium module", () => {
  let dir: string;
  beforeAll(() => {
    dir = ciliumModule();
  }, 600_000);

  it("names packages that are main packages of the module", () => {
    for (const program of [...CILIUM_PROGRAMS.agent, CILIUM_PROGRAMS.operator]) {
      const sources = fs
        .readdirSync(path.join(dir, program.pkg))
        .filter((f) => f.endsWith(".go") && !f.endsWith("_test.go"))
        .map((f) => fs.readFileSync(path.join(dir, program.pkg, f), "utf8"));
      expect({ pkg: program.pkg, main: sources.some((s) => /^package main$/m.test(s)) }).toEqual({
        pkg: program.pkg,
        main: true,
      });
    }
  });

  it("installs each program under the name its Makefile gives it", () => {
    for (const program of CILIUM_PROGRAMS.agent) {
      const makefile = fs.readFileSync(path.join(dir, program.pkg, "Makefile"), "utf8");
      expect({ pkg: program.pkg, target: /^TARGET\s*:?=\s*(\S+)/m.exec(makefile)?.[1] }).toEqual({
        pkg: program.pkg,
        target: program.name,
      });
    }
    expect(fs.readFileSync(path.join(dir, "operator", "Makefile"), "utf8")).toMatch(
      /^cilium-operator-generic: GO_TAGS_FLAGS\+=ipam_provider_operator$/m,
    );
  });

  it("copies the scripts the chart's init containers run from where the module has them", () => {
    for (const [from, to] of Object.entries(CILIUM_SCRIPTS)) {
      expect(fs.existsSync(path.join(dir, from))).toBe(true);
      expect(to).toMatch(/^\/[a-z-]+\.sh$/);
    }
    const chart = path.join(dir, "install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml");
    const template = fs.readFileSync(chart, "utf8");
    for (const script of ["/init-container.sh", "/install-plugin.sh", "/cni-uninstall.sh"]) {
      expect(template).toContain(script);
    }
  });

  it("finds the BPF sources the agent compiles: its programs' C files and headers", () => {
    const sources = bpfSources(listFiles(dir, "bpf"));
    expect(sources).toEqual(
      expect.arrayContaining(["bpf/bpf_lxc.c", "bpf/bpf_host.c", "bpf/bpf_overlay.c"]),
    );
    expect(sources.some((f) => f.startsWith("bpf/tests/"))).toBe(false);
    expect(sources.length).toBeGreaterThan(100);
  });

  it("names the images as the chart's defaults do, with no digest", () => {
    const values = parse(
      fs.readFileSync(path.join(dir, "install/kubernetes/cilium/values.yaml"), "utf8"),
    ) as {
      image: { repository: string; tag: string; useDigest: boolean };
      operator: { image: { repository: string; tag: string; suffix: string; useDigest: boolean } };
    };
    const refs = ciliumImageRefs(CILIUM_VERSION);
    expect(refs.agent).toBe(`${values.image.repository}:${values.image.tag}`);
    // The operator's template: <repository>-<cloud><suffix>:<tag>, cloud "generic".
    const op = values.operator.image;
    expect(refs.operator).toBe(`${op.repository}-generic${op.suffix}:${op.tag}`);
    expect([values.image.useDigest, op.useDigest]).toEqual([false, false]);
  });
});
