import { defaultVersions } from "../../components/config/defaults";
import {
  longestOutage,
  lostWrites,
  memberHealthy,
  memberSeesNoLeader,
  minimums,
  samplesLine,
  parseMembers,
  parseWrites,
  readyzVerdict,
} from "./highAvailability";
import { PATCH_FROM, UPGRADE_FROM, mirrorArgs } from "./mirror";

describe("longestOutage", () => {
  it("is zero when every request answered", () => {
    expect(
      longestOutage([
        { at: 0, ok: true },
        { at: 1, ok: true },
      ]),
    ).toEqual({ seconds: 0, from: 0 });
  });

  it("runs from the first failed request to the first answered one after it", () => {
    const polls = [
      { at: 0, ok: true },
      { at: 5.2, ok: false },
      { at: 6.3, ok: false },
      { at: 7.4, ok: true },
      { at: 20, ok: false },
      { at: 21, ok: true },
    ];
    expect(longestOutage(polls)).toEqual({ seconds: 7.4 - 5.2, from: 5.2 });
  });

  it("counts an outage that never ended up to the last request", () => {
    const polls = [
      { at: 0, ok: true },
      { at: 1, ok: false },
      { at: 2, ok: true },
      { at: 10, ok: false },
      { at: 30, ok: false },
    ];
    expect(longestOutage(polls)).toEqual({ seconds: 20, from: 10 });
  });
});

describe("the failover writer", () => {
  const output = "ok 1\nok 2\nfail 3\nok 4\n";

  it("reads which puts etcd acknowledged", () => {
    expect(parseWrites(output)).toEqual({ acknowledged: [1, 2, 4], failed: 1 });
  });

  it("finds acknowledged keys etcd no longer has", () => {
    const keys = "/hardway/failover/1\n\n/hardway/failover/4\n";
    expect(lostWrites([1, 2, 4], keys, "/hardway/failover/")).toEqual([2]);
    expect(lostWrites([1, 4], keys, "/hardway/failover/")).toEqual([]);
  });
});

describe("parseMembers", () => {
  it("reads etcdctl's simple member list, IDs kept as the hex etcdctl prints", () => {
    const simple = [
      "8e9e05c52164694d, started, control0, https://192.168.234.11:2380, https://192.168.234.11:2379, false",
      "f2a1c0e4b8d3a901, unstarted, , https://192.168.234.13:2380, , true",
      "",
    ].join("\n");
    expect(parseMembers(simple)).toEqual([
      { id: "8e9e05c52164694d", name: "control0" },
      { id: "f2a1c0e4b8d3a901", name: "" },
    ]);
  });
});

describe("memberHealthy", () => {
  it("reads etcd's /health answer", () => {
    expect(memberHealthy('{"health":"true","reason":""}')).toBe(true);
    expect(memberHealthy('{"health":"false","reason":"RAFT NO LEADER"}')).toBe(false);
  });

  it("tells a member between two leaders from one that is unhealthy otherwise", () => {
    expect(memberSeesNoLeader('{"health":"false","reason":"RAFT NO LEADER"}')).toBe(true);
    expect(
      memberSeesNoLeader('{"health":"false","reason":"RANGE ERROR:etcdserver: leader changed"}'),
    ).toBe(true);
    expect(
      memberSeesNoLeader('{"health":"false","reason":"RANGE ERROR:etcdserver: request timed out"}'),
    ).toBe(false);
    expect(memberSeesNoLeader('{"health":"false","reason":"ALARM NOSPACE"}')).toBe(false);
    expect(memberSeesNoLeader('{"health":"true","reason":""}')).toBe(false);
    expect(
      memberSeesNoLeader("curl: (7) Failed to connect to 192.168.234.12 port 2379 after 13 ms"),
    ).toBe(false);
  });

  it("counts what is not an answer as not healthy", () => {
    expect(memberHealthy("")).toBe(false);
    expect(memberHealthy("curl: (28) Operation timed out")).toBe(false);
  });
});

describe("readyzVerdict", () => {
  it("counts a 200 as ready, with the time it took", () => {
    const stdout = "[+]ping ok\n[+]etcd ok\nreadyz check passed\n200 3.402";
    expect(readyzVerdict({ code: 0, stdout, stderr: "" })).toEqual({
      ok: true,
      why: "ok in 3.4 s",
    });
  });

  it("names the checks a server failed", () => {
    const stdout =
      "[+]ping ok\n[-]etcd-readiness failed: reason withheld\n[-]shutdown failed: reason withheld\nreadyz check failed\n500 0.210";
    expect(readyzVerdict({ code: 0, stdout, stderr: "" })).toEqual({
      ok: false,
      why: "500 in 0.2 s: etcd-readiness shutdown",
    });
  });

  it("says why there was no answer", () => {
    const stderr = "curl: (28) Operation timed out after 20001 milliseconds with 0 bytes received";
    expect(readyzVerdict({ code: 28, stdout: "\n000 20.001", stderr })).toEqual({
      ok: false,
      why: stderr,
    });
  });
});

describe("minimums", () => {
  it("is the lowest count of each kind over the samples", () => {
    expect(
      minimums([
        { api: 3, etcd: 3 },
        { api: 2, etcd: 3 },
        { api: 3, etcd: 2 },
      ]),
    ).toEqual({ api: 2, etcd: 2, samples: 3, elections: 0 });
  });

  it("counts the samples that caught etcd between two leaders", () => {
    expect(
      minimums([
        { api: 3, etcd: 3, election: false },
        { api: 3, etcd: 2, election: true },
      ]),
    ).toEqual({ api: 3, etcd: 2, samples: 2, elections: 1 });
  });
});

describe("samplesLine", () => {
  it("says the samples, the minimums and the elections caught", () => {
    expect(
      samplesLine(
        minimums([
          { api: 3, etcd: 3, election: false },
          { api: 2, etcd: 2, election: true },
        ]),
      ),
    ).toBe(
      "2 samples, at least 2 API servers ready and 2 members healthy at every one (1 caught etcd between two leaders and asked again 10 s later)",
    );
  });
});

describe("the HA run's mirror", () => {
  const option = (args: string[], name: string) => args[args.indexOf(name) + 1].split(",");

  it("has Kubernetes and etcd a patch below the pins, in the same minor", () => {
    const args = mirrorArgs("/m", { minorUpgrade: false, patchUpgrade: true });
    expect(option(args, "--kubernetes")).toEqual([
      PATCH_FROM.kubernetes,
      defaultVersions.kubernetes,
    ]);
    expect(option(args, "--etcd")).toEqual([
      UPGRADE_FROM.etcd,
      PATCH_FROM.etcd,
      defaultVersions.etcd,
    ]);
    const minor = (v: string) => v.split(".").slice(0, 2).join(".");
    const patch = (v: string) => Number(v.split(".")[2]);
    for (const [from, pin] of [
      [PATCH_FROM.kubernetes, defaultVersions.kubernetes],
      [PATCH_FROM.etcd, defaultVersions.etcd],
    ]) {
      expect(minor(from)).toBe(minor(pin));
      expect(patch(from)).toBeLessThan(patch(pin));
    }
  });

  it("is not built for the other runs", () => {
    const args = mirrorArgs("/m", { minorUpgrade: false });
    expect(option(args, "--kubernetes")).toEqual([defaultVersions.kubernetes]);
    expect(option(args, "--etcd")).not.toContain(PATCH_FROM.etcd);
  });
});
