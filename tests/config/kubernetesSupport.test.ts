import { defaultVersions } from "../../components/config/defaults";
import {
  KUBERNETES_END_OF_LIFE,
  compareVersions,
  etcdMoveProblem,
  kubernetesMoveProblem,
  minorOf,
  supportedOn,
  versionProblems,
  versionWarnings,
} from "../../components/config/kubernetesSupport";

describe("Kubernetes support window", () => {
  it("pins a Kubernetes minor that is still supported today", () => {
    const today = new Date();
    const minor = minorOf(defaultVersions.kubernetes);
    expect(KUBERNETES_END_OF_LIFE).toHaveProperty([minor]);
    if (!supportedOn(defaultVersions.kubernetes, today)) {
      throw new Error(
        `Kubernetes ${minor} reached end of life on ${KUBERNETES_END_OF_LIFE[minor]}; move defaultVersions to a supported minor`,
      );
    }
  });

  it("counts the end-of-life day itself as supported, and the next day not", () => {
    expect(supportedOn("1.36.5", new Date("2027-06-28T23:59:00Z"))).toBe(true);
    expect(supportedOn("1.36.5", new Date("2027-06-29T00:00:00Z"))).toBe(false);
    expect(supportedOn("1.33.4", new Date("2026-01-01T00:00:00Z"))).toBe(false); // not in the table
  });
});

describe("versions that go together", () => {
  const pins = {
    kubernetes: defaultVersions.kubernetes,
    etcd: defaultVersions.etcd,
    containerd: defaultVersions.containerd,
    crio: defaultVersions.crio,
    crictl: defaultVersions.crictl,
    charts: { cilium: { version: defaultVersions.charts.cilium.version } },
  };
  const day = new Date("2026-12-02T00:00:00Z");
  const containerd = { cni: "bridge", containerRuntime: "containerd" };

  it("pins a supported minor, with nothing to warn about but Cilium's tested range", () => {
    expect(versionProblems(pins)).toEqual([]);
    expect(versionWarnings(pins, containerd, day)).toEqual([]);
    expect(versionWarnings(pins, { ...containerd, cni: "cilium" }, day)).toEqual([
      `hardway:versions.charts.cilium ${pins.charts.cilium.version} with Kubernetes 1.37: Cilium 1.20 is tested on Kubernetes 1.33 to 1.36`,
    ]);
  });

  it("refuses a minor the renderers were not checked against, naming the ones they were", () => {
    expect(versionProblems({ kubernetes: "1.34.4" })).toEqual([
      "hardway:versions.kubernetes 1.34.4: this program renders the flags and configuration files of Kubernetes 1.36 and 1.37 only; pick a release of one of those minors",
    ]);
    expect(versionProblems({ kubernetes: "1.36.5" })).toEqual([]);
  });

  it("warns about an end-of-life minor and components of another minor", () => {
    const old = {
      ...pins,
      kubernetes: "1.36.5",
      etcd: "3.7.3",
      containerd: "2.4.2",
      crictl: "1.37.0",
    };
    const later = new Date("2027-07-01T00:00:00Z");
    const endOfLife =
      "hardway:versions.kubernetes 1.36.5: Kubernetes 1.36 reached its end of life on 2027-06-28 and gets no more fixes; upgrade one minor at a time";
    const etcd =
      "hardway:versions.etcd 3.7.3 with Kubernetes 1.36: kubeadm 1.36 installs etcd 3.6; pin an etcd 3.6.x release";
    expect(versionWarnings(old, containerd, later)).toEqual([
      endOfLife,
      etcd,
      "hardway:versions.containerd 2.4.2 with Kubernetes 1.36: containerd recommends 2.2 or 2.3 for it",
      "hardway:versions.crictl 1.37.0 with Kubernetes 1.36: crictl releases follow the Kubernetes minors; pin a 1.36.x release",
    ]);
    // CRI-O brings its own crictl, and no containerd.
    expect(versionWarnings(old, { ...containerd, containerRuntime: "cri-o" }, later)).toEqual([
      endOfLife,
      etcd,
      "hardway:versions.crio 1.37.0 with Kubernetes 1.36: CRI-O releases follow the Kubernetes minors; pin a 1.36.x release",
    ]);
  });

  it("moves a running cluster one minor up at a time, never a minor down", () => {
    expect(kubernetesMoveProblem("1.36.5", "1.37.2")).toBeUndefined();
    expect(kubernetesMoveProblem("1.37.2", "1.37.0")).toBeUndefined();
    expect(kubernetesMoveProblem("1.35.4", "1.37.2")).toBe(
      "Kubernetes 1.35.4 → 1.37.2 skips 1.36: a minor upgrade goes one minor at a time; upgrade to a 1.36.x release first",
    );
    expect(kubernetesMoveProblem("1.37.2", "1.36.5")).toBe(
      "Kubernetes 1.37.2 → 1.36.5 goes back a minor, which Kubernetes does not support; stay on 1.37",
    );
    expect(etcdMoveProblem("3.6.16", "3.7.3")).toBeUndefined();
    expect(etcdMoveProblem("3.6.10", "3.7.3")).toMatch(/only from 3\.6\.11 or later/);
    expect(etcdMoveProblem("3.5.21", "3.7.3")).toMatch(/skips 3\.6/);
    expect(etcdMoveProblem("3.7.3", "3.6.16")).toMatch(/goes back a minor/);
  });

  it("compares versions by number, not as text", () => {
    expect(compareVersions("1.9", "1.10")).toBe(-1);
    expect(compareVersions("3.6.16", "3.6.9")).toBe(1);
    expect(compareVersions("1.37", "1.37.0")).toBe(0);
  });
});
