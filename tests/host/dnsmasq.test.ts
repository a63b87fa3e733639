import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  DnsmasqOptions,
  dnsmasqEntries,
  renderDnsmasqConfig,
  serializeDnsmasq,
} from "../../components/host/dnsmasq";
import { planFor } from "./fixtures";

const linux: DnsmasqOptions = {
  interface: "hw-dev-1a2b",
  stateDir: "/var/lib/hardway/dev",
  platform: "linux",
  tag: "hwdev",
};

function values(config: string, key: string): string[] {
  return config
    .split("\n")
    .filter((line) => line === key || line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

/** Runs the real consumer's syntax check on a rendered file; returns what it printed. */
function dnsmasqTest(config: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hw-dnsmasq-"));
  try {
    const file = path.join(dir, "dnsmasq.conf");
    fs.writeFileSync(file, config);
    const result = spawnSync("dnsmasq", ["--test", "-C", file], {
      encoding: "utf8",
      timeout: 10_000,
    });
    const printed = `${result.stdout}${result.stderr}`;
    if (result.status !== 0) {
      throw new Error(
        `dnsmasq --test rejected the config (exit ${result.status}): ${printed}\n${config}`,
      );
    }
    return printed;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("the dnsmasq config", () => {
  const plan = planFor();
  const config = renderDnsmasqConfig(plan, linux);

  it("binds the bridge alone on Linux, never loopback", () => {
    expect(values(config, "interface")).toEqual([linux.interface]);
    expect(values(config, "except-interface")).toEqual(["lo"]);
    expect(values(config, "bind-interfaces")).toHaveLength(1);
    expect(values(config, "bind-dynamic")).toHaveLength(0);
  });

  it("keeps its pid and lease files in the state dir", () => {
    expect(values(config, "pid-file")).toEqual(["/var/lib/hardway/dev/dnsmasq.pid"]);
    expect(values(config, "dhcp-leasefile")).toEqual(["/var/lib/hardway/dev/dnsmasq.leases"]);
  });

  it("leases every node its planned address by MAC", () => {
    expect(values(config, "dhcp-host")).toEqual(
      plan.nodes.map((n) => `${n.mac},${n.ip},${n.name}`),
    );
  });

  it("serves the plan's DHCP range with the host as router and DNS server", () => {
    expect(values(config, "dhcp-range")).toEqual([
      `set:hwdev,${plan.dhcpRange.first},${plan.dhcpRange.last},255.255.255.0,12h`,
    ]);
    expect(values(config, "dhcp-option")).toEqual(
      expect.arrayContaining([
        `tag:hwdev,option:router,${plan.hostIp}`,
        `tag:hwdev,option:dns-server,${plan.hostIp}`,
      ]),
    );
  });

  it("names the nodes, the API VIP and the host, short and fully qualified", () => {
    const records = values(config, "host-record");
    expect(records).toEqual(
      expect.arrayContaining([
        `kubernetes,kubernetes.${plan.domain},${plan.apiVip}`,
        `host,host.${plan.domain},${plan.hostIp}`,
        ...plan.nodes.map((n) => `${n.name},${n.fqdn},${n.ip}`),
      ]),
    );
    expect(values(config, "local")).toEqual([`/${plan.domain}/`]);
  });

  it("listens on the host address with bind-dynamic on macOS, where vmnet's bridge comes and goes", () => {
    const darwin = renderDnsmasqConfig(plan, { ...linux, platform: "darwin" });
    expect(values(darwin, "listen-address")).toEqual([plan.hostIp]);
    expect(values(darwin, "bind-dynamic")).toHaveLength(1);
    expect(values(darwin, "interface")).toEqual([]);
    expect(values(darwin, "pid-file")).toEqual([]);
  });

  it("refuses a value that would break out of its line", () => {
    expect(() => serializeDnsmasq([["interface", "br0\nport=0"]])).toThrow(/one line/);
  });

  it.each([
    ["the default plan", {}],
    ["1 control plane and no workers", { controlPlanes: 1, workers: 0 }],
    ["5 control planes and 40 workers", { controlPlanes: 5, workers: 40 }],
  ])("passes dnsmasq --test for %s", (_label, raw) => {
    const big = planFor(raw);
    const rendered = renderDnsmasqConfig(big, linux);
    expect(values(rendered, "dhcp-host")).toHaveLength(big.nodes.length);
    expect(dnsmasqTest(rendered)).toMatch(/syntax check OK/);
  });

  it("passes dnsmasq --test with two macOS stacks sharing one Homebrew config", () => {
    const dev = renderDnsmasqConfig(planFor(), { ...linux, platform: "darwin" });
    const prod = renderDnsmasqConfig(planFor({ subnet: "10.44.0.0/24", domain: "prod.internal" }), {
      ...linux,
      platform: "darwin",
      tag: "hwprod",
    });
    expect(dnsmasqTest(dev + prod)).toMatch(/syntax check OK/);
  });

  it("is built from entries, one per line", () => {
    const entries = dnsmasqEntries(plan, linux);
    expect(config.split("\n").filter(Boolean)).toHaveLength(entries.length);
  });
});
