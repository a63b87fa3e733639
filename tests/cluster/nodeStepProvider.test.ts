/**
 * NodeStep's provider decisions, as the engine asks for them: a change of anything a step
 * installs is an update in place, never a replacement (which would run `remove` first and wipe
 * state directories); only another step name is another step. And the SSH it uses pins the VM's
 * own host key.
 */
import { execFileSync } from "node:child_process";
import {
  NodeStepState,
  TargetOrder,
  forEachTarget,
  updatePlan,
  nodeStepArgv,
  nodeStepProvider,
  releaseMoveProblem,
  startedOrRestarted,
  applyReport,
} from "../../components/cluster/nodeStep";
import { knownHostsLine, sshOptions } from "../../components/cluster/ssh";

const base: NodeStepState = {
  step: "etcd",
  user: "ubuntu",
  privateKey: "KEY",
  scripts: { "node-step.sh": "#!/bin/bash\n" },
  scriptsHash: "0123456789abcdef",
  targets: [
    {
      node: "control0",
      host: "192.168.234.11",
      hostKey: "ssh-ed25519 AAAA",
      instance: "i-1",
      filesSha256: "a",
    },
  ],
  nodes: ["control0"],
  bundles: { control0: "FILE /x 0644 eA==\n" },
  uploads: [],
  beforeLeave: [],
  apply: nodeStepArgv(
    "apply",
    {
      step: "etcd",
      units: ["etcd.service"],
      startNoBlock: [],
      stateDirs: ["/var/lib/etcd"],
      noRestart: [],
      afterFiles: "",
    },
    [],
  ),
  remove: nodeStepArgv(
    "remove",
    {
      step: "etcd",
      units: ["etcd.service"],
      startNoBlock: [],
      stateDirs: ["/var/lib/etcd"],
      noRestart: [],
      afterFiles: "",
    },
    [],
  ),
  readiness: [],
  finalCheck: [],
  timeoutSeconds: 60,
};

describe("NodeStep's diff", () => {
  it("changes nothing when nothing changed", async () => {
    await expect(nodeStepProvider.diff!("id", base, base)).resolves.toMatchObject({
      changes: false,
      replaces: [],
    });
  });

  it.each<[string, Partial<NodeStepState>]>([
    ["a file (a renewed certificate)", { bundles: { control0: "FILE /x 0644 eQ==\n" } }],
    [
      "a release file (a new version)",
      { uploads: [{ localPath: "/c/etcd/3.6.17/x", remotePath: "/r/x" }] },
    ],
    ["the VM (a new disk)", { targets: [{ ...base.targets[0], instance: "i-2" }] }],
    ["the node scripts", { scriptsHash: "fedcba9876543210" }],
  ])("updates in place when %s changes", async (_what, change) => {
    await expect(nodeStepProvider.diff!("id", base, { ...base, ...change })).resolves.toMatchObject(
      {
        changes: true,
        replaces: [],
      },
    );
  });

  it("replaces only when the step itself is another one", async () => {
    await expect(
      nodeStepProvider.diff!("id", base, { ...base, step: "etcd-v2" }),
    ).resolves.toMatchObject({
      changes: true,
      replaces: ["step"],
    });
  });

  it("wipes state only on remove", () => {
    expect(base.apply).not.toContain("--state-dir");
    expect(base.remove).toEqual(expect.arrayContaining(["--state-dir", "/var/lib/etcd"]));
  });
});

describe("SSH to a VM", () => {
  it("accepts the VM's own host key and nothing else", () => {
    expect(knownHostsLine("192.168.234.11", "ssh-ed25519 AAAAC3Nza host\n")).toBe(
      "192.168.234.11 ssh-ed25519 AAAAC3Nza\n",
    );
    const options = sshOptions("/tmp/x");
    expect(options).toEqual(
      expect.arrayContaining([
        "StrictHostKeyChecking=yes",
        "UserKnownHostsFile=/tmp/x/known_hosts",
        "BatchMode=yes",
      ]),
    );
    expect(options.join(" ")).not.toMatch(
      /StrictHostKeyChecking=no|UserKnownHostsFile=\/dev\/null/,
    );
  });
});

describe("SSH options, as OpenSSH reads them", () => {
  // `ssh -G` prints the configuration a connection would use without connecting.
  const effective = (): Map<string, string> => {
    const out = execFileSync("ssh", ["-G", ...sshOptions("/tmp/x"), "hardway@192.0.2.1"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new Map(
      out
        .split("\n")
        .filter((line) => line.includes(" "))
        .map((line) => [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)]),
    );
  };

  it("offers AES-GCM first and keeps OpenSSH's other ciphers behind it", () => {
    const ciphers = effective().get("ciphers")!.split(",");
    expect(ciphers.slice(0, 2)).toEqual(["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]);
    expect(ciphers).toContain("chacha20-poly1305@openssh.com");
  });

  it("checks the host key strictly against the session's own known-hosts file", () => {
    const config = effective();
    expect(config.get("stricthostkeychecking")).toBe("true");
    expect(config.get("userknownhostsfile")).toBe("/tmp/x/known_hosts");
    expect(config.get("batchmode")).toBe("yes");
  });
});

describe("forEachTarget", () => {
  /** Runs forEachTarget over three nodes whose bodies take a tick; records the overlap. */
  function run(order: TargetOrder, failing: readonly string[] = []) {
    const events: string[] = [];
    let running = 0;
    let most = 0;
    const outcome = forEachTarget(["control0", "control1", "control2"], order, async (node) => {
      running++;
      most = Math.max(most, running);
      events.push(`start ${node}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      events.push(`end ${node}`);
      if (failing.includes(node)) {
        throw new Error(`${node}: exit 1`);
      }
    });
    return { outcome, events, most: () => most };
  }

  it("creates on the first target alone, then on the others at once, when the first sets the cluster up", async () => {
    const r = run("first-alone");
    await r.outcome;
    expect(r.events.slice(0, 2)).toEqual(["start control0", "end control0"]);
    expect(r.events.slice(2, 4)).toEqual(["start control1", "start control2"]);
    expect(r.most()).toBe(2);
    const failed = run("first-alone", ["control0"]);
    await expect(failed.outcome).rejects.toThrow("control0: exit 1");
    expect(failed.events).not.toContain("start control1");
  });

  it("creates on every target at once", async () => {
    const r = run("parallel");
    await r.outcome;
    expect(r.most()).toBe(3);
  });

  it("waits for every target of a create and reports each failure", async () => {
    const r = run("parallel", ["control0", "control2"]);
    await expect(r.outcome).rejects.toThrow("control0: exit 1\ncontrol2: exit 1");
    expect(r.events.filter((e) => e.startsWith("end"))).toHaveLength(3);
  });
});

describe("a step's release, at preview", () => {
  const withRelease = (version: string, software: "Kubernetes" | "etcd" = "Kubernetes") => ({
    ...base,
    release: { software, version },
  });

  it("lets a patch or the next minor through", async () => {
    for (const [from, to] of [
      ["1.36.5", "1.36.4"],
      ["1.36.5", "1.37.2"],
    ]) {
      const checked = await nodeStepProvider.check!(withRelease(from), withRelease(to));
      expect(checked.failures ?? []).toEqual([]);
    }
  });

  it("refuses a skipped minor and a minor back, saying why, on the release property", async () => {
    const skipped = await nodeStepProvider.check!(withRelease("1.35.4"), withRelease("1.37.2"));
    expect(skipped.failures).toEqual([
      {
        property: "release",
        reason:
          "Kubernetes 1.35.4 → 1.37.2 skips 1.36: a minor upgrade goes one minor at a time; upgrade to a 1.36.x release first",
      },
    ]);
    const back = await nodeStepProvider.check!(
      withRelease("3.7.3", "etcd"),
      withRelease("3.6.16", "etcd"),
    );
    expect(back.failures?.[0].reason).toBe(
      "etcd 3.7.3 → 3.6.16 goes back a minor, which etcd does not support; stay on 3.7",
    );
  });

  it("checks nothing on a create (no old release), as for a step made before releases were recorded", async () => {
    expect((await nodeStepProvider.check!(base, withRelease("1.37.2"))).failures ?? []).toEqual([]);
  });

  it("waits for readiness after a first start as well as after a restart", () => {
    expect(startedOrRestarted("hardway-step: started kube-apiserver.service\n")).toBe(true);
    expect(startedOrRestarted("changed /x\nhardway-step: restarted etcd.service\n")).toBe(true);
    expect(startedOrRestarted("changed /x\n")).toBe(false);
  });

  it("reports each target's apply in one line: what it did to each unit, and the time it took", () => {
    expect(
      applyReport(
        "etcd",
        "control1",
        "changed /etc/etcd/etcd.env\nhardway-step: restarted etcd.service\n",
        40.6,
        35.2,
      ),
    ).toBe("etcd on control1: restarted etcd.service in 41 s, ready 35 s later");
    expect(
      applyReport(
        "kubelet",
        "worker0",
        "hardway-step: started containerd.service\nhardway-step: reloaded kubelet.service\n",
        3,
      ),
    ).toBe("kubelet on worker0: started containerd.service, reloaded kubelet.service in 3 s");
    // load-images.sh says what it loaded, not what it restarted.
    expect(applyReport("pod-images", "worker0", "loaded /x/echo.tar\n", 12.4)).toBe(
      "pod-images on worker0: nothing (re)started in 12 s",
    );
  });

  it("names the software a release move is judged by", () => {
    expect(
      releaseMoveProblem(
        { software: "etcd", version: "3.6.10" },
        { software: "etcd", version: "3.7.3" },
      ),
    ).toBe(
      "etcd 3.6.10 → 3.7.3: etcd 3.7 can be reached only from 3.6.11 or later; upgrade to the newest 3.6.x first",
    );
    expect(
      releaseMoveProblem(
        { software: "etcd", version: "3.6.16" },
        { software: "Kubernetes", version: "1.37.2" },
      ),
    ).toBeUndefined();
  });
});

describe("another number of targets (hardway:controlPlanes, hardway:workers)", () => {
  const on = (step: string, ...nodes: string[]): NodeStepState => ({
    ...base,
    step,
    nodes,
    targets: nodes.map((node, i) => ({ ...base.targets[0], node, host: `192.168.234.${11 + i}` })),
  });
  const plan = (from: NodeStepState, to: NodeStepState) =>
    updatePlan(from, to).map((a) => (a.kind === "final-check" ? a.kind : `${a.kind} ${a.node}`));

  it("is accepted at preview for etcd and every other step, known or not yet known", async () => {
    // The engine hands a preview's unknown values to check as this sentinel.
    const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9" as unknown as NodeStepState["targets"];
    for (const [from, to] of [
      [on("etcd", "control0"), on("etcd", "control0", "control1", "control2")],
      [on("etcd", "control0", "control1", "control2"), on("etcd", "control0")],
      [on("etcd", "control0"), { ...on("etcd", "control0", "control1"), targets: unknown }],
      [on("kube-apiserver", "control0"), on("kube-apiserver", "control0", "control1")],
    ]) {
      expect((await nodeStepProvider.check!(from, to)).failures ?? []).toEqual([]);
    }
  });

  it("applies the kept targets one at a time first, then the new ones, then checks the whole step", () => {
    const etcd = { ...on("etcd", "control0", "control1", "control2"), finalCheck: ["health"] };
    expect(plan({ ...etcd, targets: etcd.targets.slice(0, 1) }, etcd)).toEqual([
      "apply control0",
      "apply control1",
      "apply control2",
      "final-check",
    ]);
    // A new member listed before a kept one still comes after it: the cluster it joins runs.
    const reordered = on("etcd", "control1", "control0");
    expect(plan(on("etcd", "control0"), reordered)).toEqual(["apply control0", "apply control1"]);
  });

  it("removes the targets that left last, after the ones that stay run their new settings", () => {
    // Three API servers become one: control0 restarts with its new certificate and flags while
    // control1 and control2 still answer behind the VIP; then they go, one after the other.
    const three = on("kube-apiserver", "control0", "control1", "control2");
    expect(plan(three, on("kube-apiserver", "control0"))).toEqual([
      "apply control0",
      "leave control1",
      "leave control2",
    ]);
    // etcd's check of every member runs once the members that left are out of the cluster.
    const withCheck = (s: NodeStepState) => ({ ...s, finalCheck: ["health"] });
    expect(
      plan(withCheck(on("etcd", "control0", "control1")), withCheck(on("etcd", "control0"))),
    ).toEqual(["apply control0", "leave control1", "final-check"]);
  });
});
