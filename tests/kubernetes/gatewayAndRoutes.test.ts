import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EMULATED_CHECKS, ldirectordConfig } from "../../components/kubernetes/loadBalancer";
import { podRouteArgs } from "../../components/cluster/podRoutes";
import { podRoutes } from "../../components/kubernetes/podRoutes";
import { renderToml } from "../../components/kubernetes/toml";
import { plan, run } from "./fixtures";
import { itIfAvailable, missingPrograms } from "../harness/prerequisites";

const p = plan();

/**
 * `ldirectord <file> status` parses the whole file (exit 2 and a "config_error" on any bad
 * line) and, with no daemon running, then reports "stopped" with exit 3. It touches no IPVS state.
 */
function ldirectordStatus(text: string): { status: number | null; output: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-ldirectord-"));
  try {
    const file = path.join(dir, "hardway-ldirectord.cf");
    fs.writeFileSync(file, text);
    const result = spawnSync("ldirectord", [file, "status"], { encoding: "utf8", timeout: 20000 });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("ldirectord config", () => {
  const text = ldirectordConfig({
    plan: p,
    logFile: path.join(os.tmpdir(), "hw-ldirectord-test.log"),
  });

  itIfAvailable(missingPrograms(["ldirectord"]), "is accepted by ldirectord's own parser", () => {
    const ok = ldirectordStatus(text);
    expect(ok.output).toContain("ldirectord is stopped");
    expect(ok.status).toBe(3);
    const broken = ldirectordStatus(text.replace("checktype=negotiate", "checktype=bogus"));
    expect(broken.status).toBe(2);
  });

  it("balances the VIP over every control node by direct routing with an HTTPS /readyz probe", () => {
    const lines = text.split("\n");
    expect(lines).toContain(`virtual=${p.apiVip}:6443`);
    const reals = lines.filter((l) => l.trim().startsWith("real="));
    expect(reals.map((l) => l.trim())).toEqual(p.controls.map((c) => `real=${c.ip}:6443 gate`));
    for (const option of [
      "checktype=negotiate",
      "service=https",
      'request="/readyz"',
      'receive="ok"',
      "protocol=tcp",
      "scheduler=wrr",
    ]) {
      expect(lines).toContain(`\t${option}`);
    }
    // One slow answer does not drop a server; two failed checks in a row do.
    expect(lines).toEqual(expect.arrayContaining(["failurecount=2", "negotiatetimeout=3"]));
  });

  itIfAvailable(
    missingPrograms(["ldirectord"]),
    "leaves etcd's checks out of an emulated guest's probe: every server shares one etcd",
    () => {
      const emulated = ldirectordConfig({ plan: p, ...EMULATED_CHECKS });
      expect(emulated).toContain('\trequest="/readyz?exclude=etcd&exclude=etcd-readiness"\n');
      expect(ldirectordStatus(emulated).status).toBe(3);
    },
  );

  it("follows the number of control nodes", () => {
    const one = ldirectordConfig({ plan: plan({ controlPlanes: 1 }) });
    expect(one.match(/real=/g)).toHaveLength(1);
    // A fallback on the same address as the real server would be deleted with it.
    expect(one).not.toContain("fallback=");
    // Nothing to fail over to: the only server is never dropped, so never checked.
    expect(one).toContain("\tchecktype=on\n");
    expect(one).not.toContain("/readyz");
  });

  itIfAvailable(missingPrograms(["ldirectord"]), "with one control plane too", () => {
    const one = ldirectordConfig({
      plan: plan({ controlPlanes: 1 }),
      logFile: path.join(os.tmpdir(), "hw-ldirectord-test.log"),
    });
    expect(ldirectordStatus(one).status).toBe(3);
  });
});

describe("host pod routes", () => {
  it("route each kubelet node's pod CIDR via the node's IP", () => {
    const routes = podRoutes(p);
    expect(routes).toHaveLength(p.kubeletNodes.length);
    expect(routes[0]).toEqual({
      podCidr: "10.200.11.0/24",
      via: p.controls[0].ip,
      node: "control0",
    });
    expect(routes.map((r) => r.node)).not.toContain("gateway");
  });

  it("are kept by pod-route.sh in a throwaway network namespace: created, checked, restored, removed", () => {
    const script = path.resolve(__dirname, "../../assets/host/pod-route.sh");
    const ns = `hwroute-${process.pid}`;
    const route = (verb: string, r: ReturnType<typeof podRoutes>[number]) =>
      spawnSync("ip", ["netns", "exec", ns, "bash", script, verb, ...podRouteArgs(r)], {
        encoding: "utf8",
      });
    run("ip", ["netns", "add", ns]);
    try {
      run("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"]);
      run("ip", ["-n", ns, "link", "set", "peer0", "up"]);
      run("ip", ["-n", ns, "addr", "add", `${p.hostIp}/${p.prefixLength}`, "dev", "eth0"]);
      run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
      const routes = podRoutes(p);
      for (const r of routes) {
        expect(route("status", r).status).toBe(1);
        expect(route("create", r).status).toBe(0);
        expect(route("create", r).status).toBe(0);
        expect(route("status", r).status).toBe(0);
      }
      const table = run("ip", ["-n", ns, "route", "show"]);
      for (const r of routes) {
        expect(table).toContain(`${r.podCidr} via ${r.via} dev eth0`);
      }
      // What a host reboot does: the routes are gone, status says so, create puts them back.
      run("ip", ["-n", ns, "route", "flush", "root", "10.200.0.0/16"]);
      expect(route("status", routes[0]).status).toBe(1);
      expect(route("create", routes[0]).status).toBe(0);
      expect(route("status", routes[0]).status).toBe(0);
      for (const r of routes) {
        expect(route("delete", r).status).toBe(0);
        expect(route("delete", r).status).toBe(0);
      }
      expect(run("ip", ["-n", ns, "route", "show"])).not.toContain("10.200.");
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
    }
  });
});

describe("TOML subset", () => {
  it("round-trips through Python's tomllib, including quoted dotted keys", () => {
    const doc = {
      version: 3,
      a: { "io.x.v1": { flag: true, list: ["p", 'q"r'], n: 2 } },
      b: { empty: {} },
    };
    const parsed: unknown = JSON.parse(
      run(
        "python3",
        ["-c", "import sys, json, tomllib; print(json.dumps(tomllib.loads(sys.stdin.read())))"],
        renderToml(doc),
      ),
    );
    expect(parsed).toEqual(doc);
    expect(renderToml(doc)).toContain('[a."io.x.v1"]');
  });

  it("refuses numbers TOML cannot represent", () => {
    expect(() => renderToml({ x: Number.NaN })).toThrow(/cannot hold/);
  });
});
