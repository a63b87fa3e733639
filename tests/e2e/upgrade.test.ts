/**
 * The minor upgrade phase's judgement of what it sampled: the version every daemon ran, when each
 * reached the new minor, whether any ran newer than an API server, and cordons.
 */
import { defaultVersions } from "../../components/config/defaults";
import {
  kubernetesMoveProblem,
  etcdMoveProblem,
  minorOf,
} from "../../components/config/kubernetesSupport";
import { neverReachedServer } from "./cluster";
import { hostAddress } from "./clusterChecks";
import { UPGRADE_FROM } from "./mirror";
import {
  VersionSample,
  cordonedBeforeKubelet,
  firstReached,
  parseRunning,
  sampleCommand,
  skewViolations,
} from "./upgrade";

const sample = (
  at: number,
  running: Record<string, string>,
  unschedulable: Record<string, boolean> = {},
): VersionSample => ({ at, running, unschedulable });

describe("the minor upgrade's samples", () => {
  it("read each running daemon's version from the release file its binary came from", () => {
    expect(sampleCommand()).toContain('readlink "/proc/$pid/exe"');
    const cache = "/home/hardway/.cache/hardway/artifacts";
    expect(
      parseRunning(
        [
          `kube-apiserver|/usr/local/bin/kube-apiserver|104857600:1764680000|${cache}/kube-apiserver/1.37.2/amd64/kube-apiserver|-|/usr/local/bin/kube-apiserver`,
          "kubelet|/usr/local/bin/kubelet (deleted)|",
          "kube-proxy|/usr/local/bin/kube-proxy|",
          "",
        ].join("\n"),
        "1.36.5",
      ),
    ).toEqual({ "kube-apiserver": "1.37.2", kubelet: "1.36.5" });
  });

  const good = [
    sample(0, { "c0/kube-apiserver": "1.36.5", "c0/kubelet": "1.36.5", "w0/kubelet": "1.36.5" }),
    sample(60, { "c0/kube-apiserver": "1.37.2", "c0/kubelet": "1.36.5", "w0/kubelet": "1.36.5" }),
    sample(120, { "c0/kube-apiserver": "1.37.2", "w0/kubelet": "1.36.5" }, { c0: true }),
    sample(180, { "c0/kube-apiserver": "1.37.2", "c0/kubelet": "1.37.2", "w0/kubelet": "1.36.5" }),
    sample(240, { "c0/kube-apiserver": "1.37.2", "c0/kubelet": "1.37.2", "w0/kubelet": "1.37.2" }),
  ];

  it("find no violation when the API servers lead, and one when a kubelet does", () => {
    expect(skewViolations(good)).toEqual([]);
    const bad = [
      sample(30, {
        "c0/kube-apiserver": "1.37.2",
        "c1/kube-apiserver": "1.36.5",
        "w0/kubelet": "1.37.2",
        "w0/kube-proxy": "1.36.5",
      }),
    ];
    expect(skewViolations(bad)).toEqual([
      "at 30 s w0/kubelet ran 1.37.2 while c1/kube-apiserver ran 1.36.5",
    ]);
  });

  it("tell when each component first ran the new minor, in order", () => {
    expect(firstReached(good, "1.37")).toEqual([
      { component: "c0/kube-apiserver", at: 60 },
      { component: "c0/kubelet", at: 180 },
      { component: "w0/kubelet", at: 240 },
    ]);
  });

  it("see a node cordoned before its kubelet moved, and not otherwise", () => {
    expect(cordonedBeforeKubelet(good, "c0", "1.37")).toBe(true);
    expect(cordonedBeforeKubelet(good, "w0", "1.37")).toBe(false);
  });
});

describe("the e2e run's versions and helpers", () => {
  it("installs first one minor below the pins, a move the steps accept", () => {
    expect(
      kubernetesMoveProblem(UPGRADE_FROM.kubernetes, defaultVersions.kubernetes),
    ).toBeUndefined();
    expect(etcdMoveProblem(UPGRADE_FROM.etcd, defaultVersions.etcd)).toBeUndefined();
    const [major, minor] = minorOf(defaultVersions.kubernetes).split(".").map(Number);
    expect(minorOf(UPGRADE_FROM.kubernetes)).toBe(`${major}.${minor - 1}`);
    expect(minorOf(UPGRADE_FROM.crictl)).toBe(minorOf(UPGRADE_FROM.kubernetes));
  });

  it("asks kubectl again only when its request never reached the server", () => {
    expect(
      neverReachedServer("Unable to connect to the server: net/http: TLS handshake timeout"),
    ).toBe(true);
    expect(neverReachedServer('Error from server (NotFound): pods "echo" not found')).toBe(false);
  });

  it("expects the host at .1 of the nodes' network", () => {
    expect(hostAddress("10.77.5.21")).toBe("10.77.5.1");
  });
});
