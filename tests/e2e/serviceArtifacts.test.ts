/**
 * The run's service images and chart, checked against what consumes them: the names and tags are
 * the ones the MetalLB chart inside the run's module and the CoreDNS objects give their pods, the
 * mirror covers every registry they name, and the packaged chart is laid out as Helm loads it.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { corednsObjects } from "../../components/addons/coredns";
import { defaultVersions } from "../../components/config/defaults";
import { parseConfig } from "../../components/config/schema";
import { addressPlan } from "../../components/network/addressPlan";
import { itIfAvailable, missingPrograms } from "../harness/prerequisites";
import {
  METALLB_RUN_VERSION,
  PROGRAMS,
  goBuildArgs,
  mirroredRegistries,
  moduleDir,
  packageMetallbChart,
  programPath,
  serviceImages,
  splitRef,
} from "./serviceArtifacts";

const refs = () => serviceImages().map((i) => i.ref);

describe("the services' images", () => {
  it("splits a reference into registry, repository and tag", () => {
    expect(splitRef("registry.k8s.io/coredns/coredns:v1.14.6")).toEqual({
      registry: "registry.k8s.io",
      repository: "coredns/coredns",
      tag: "v1.14.6",
    });
    expect(splitRef("10.0.0.1:5000/a/b:1")).toEqual({
      registry: "10.0.0.1:5000",
      repository: "a/b",
      tag: "1",
    });
    expect(() => splitRef("coredns")).toThrow("expected registry/repository:tag");
  });

  it("mirrors every registry an image names", () => {
    expect(mirroredRegistries(serviceImages())).toEqual(["quay.io", "registry.k8s.io"]);
  });

  it("names CoreDNS's image as the CoreDNS objects run it", () => {
    const plan = addressPlan(parseConfig({}, { os: "linux", cpu: "x64" }));
    const deployment = corednsObjects({ plan, version: defaultVersions.coredns }).deployment;
    const image = (deployment.spec as { template: { spec: { containers: { image: string }[] } } })
      .template.spec.containers[0].image;
    expect(refs()).toContain(image);
  });

  itIfAvailable(
    missingPrograms(["go"]),
    "names MetalLB's images as the run's chart renders them (repository, appVersion as the tag)",
    () => {
      const chart = path.join(
        moduleDir("go.universe.tf/metallb", METALLB_RUN_VERSION),
        "charts/metallb",
      );
      const meta = parse(fs.readFileSync(path.join(chart, "Chart.yaml"), "utf8")) as {
        version: string;
        appVersion: string;
      };
      const values = parse(fs.readFileSync(path.join(chart, "values.yaml"), "utf8")) as Record<
        "controller" | "speaker",
        { image: { repository: string; tag: string | null } }
      >;
      expect(meta.version).toBe(METALLB_RUN_VERSION);
      for (const part of ["controller", "speaker"] as const) {
        expect(values[part].image.tag).toBeNull();
        expect(refs()).toContain(`${values[part].image.repository}:${meta.appVersion}`);
      }
    },
    120_000,
  );

  it("builds each program static from its module's own directory, cached per version", () => {
    expect(goBuildArgs(PROGRAMS.metallbSpeaker, "/out/speaker")).toEqual([
      "build",
      "-trimpath",
      "-ldflags=-s -w",
      "-o",
      "/out/speaker",
      "./speaker",
    ]);
    expect(goBuildArgs(PROGRAMS.coredns, "/out/coredns").at(-1)).toBe(".");
    expect(programPath("/c", PROGRAMS.coredns)).toBe(
      `/c/go-programs/github.com/coredns/coredns@v${defaultVersions.coredns}/coredns`,
    );
  });
});

describe("the packaged MetalLB chart", () => {
  itIfAvailable(
    missingPrograms(["go", "tar"]),
    "is named as helm package names it and holds the chart directory with its sub-charts",
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hardway-charts-"));
      try {
        const file = packageMetallbChart(dir);
        expect(path.basename(file)).toBe(`metallb-${METALLB_RUN_VERSION}.tgz`);
        const listing = spawnSync("tar", ["-tzf", file], { encoding: "utf8" }).stdout.split("\n");
        expect(listing).toEqual(
          expect.arrayContaining([
            "metallb/Chart.yaml",
            "metallb/values.yaml",
            "metallb/charts/crds/Chart.yaml",
          ]),
        );
        expect(listing.filter((f) => f !== "" && !f.startsWith("metallb/"))).toEqual([]);
        // A second call finds it.
        const mtime = fs.statSync(file).mtimeMs;
        packageMetallbChart(dir);
        expect(fs.statSync(file).mtimeMs).toBe(mtime);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
