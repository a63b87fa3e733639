import { parseConfig } from "../../components/config/schema";
import { addressPlan, macFor } from "../../components/network/addressPlan";
import { cidrRange, parseAddress, parseCidr } from "../../components/network/ipv4";

const host = { os: "linux" as const, cpu: "x64" };
const planFor = (raw: Record<string, unknown> = {}) => addressPlan(parseConfig(raw, host));

describe("the address plan", () => {
  it("lays out the default cluster as SPEC.md describes", () => {
    const plan = planFor();
    expect(plan.hostIp).toBe("192.168.234.1");
    expect(plan.gateway).toMatchObject({ name: "gateway", ip: "192.168.234.10", role: "gateway" });
    expect(plan.controls.map((n) => n.ip)).toEqual([
      "192.168.234.11",
      "192.168.234.12",
      "192.168.234.13",
    ]);
    expect(plan.workers.map((n) => n.ip)).toEqual([
      "192.168.234.21",
      "192.168.234.22",
      "192.168.234.23",
    ]);
    expect(plan.apiVip).toBe("192.168.234.20");
    expect(plan.apiServerUrl).toBe("https://192.168.234.20:6443");
    expect(plan.dhcpRange).toEqual({ first: "192.168.234.100", last: "192.168.234.149" });
    expect(plan.metallbPool).toEqual({ first: "192.168.234.200", last: "192.168.234.250" });
    expect(plan.apiServiceIp).toBe("10.32.0.1");
    expect(plan.clusterDnsIp).toBe("10.32.0.10");
    expect(plan.netmask).toBe("255.255.255.0");
    expect(plan.controls[0].fqdn).toBe("control0.hardway.internal");
    // Numbered by the address's last octet: another number of nodes moves no node's pods.
    expect(plan.kubeletNodes.map((n) => n.podCidr)).toEqual([
      "10.200.11.0/24",
      "10.200.12.0/24",
      "10.200.13.0/24",
      "10.200.21.0/24",
      "10.200.22.0/24",
      "10.200.23.0/24",
    ]);
    expect(planFor({ controlPlanes: 5, workers: 1 }).workers[0].podCidr).toBe("10.200.21.0/24");
    expect(planFor({ controlPlanes: 1, workers: 1 }).workers[0].podCidr).toBe("10.200.21.0/24");
    expect(plan.gateway.podCidr).toBeUndefined();
    expect(plan.dnsRecords).toContainEqual({ name: "kubernetes", ip: "192.168.234.20" });
    expect(plan.dnsRecords).toContainEqual({ name: "host", ip: "192.168.234.1" });
  });

  it("derives everything from the configured subnet", () => {
    const plan = planFor({ subnet: "10.77.5.0/24", metallbPool: "10.77.5.220-10.77.5.230" });
    expect(plan.hostIp).toBe("10.77.5.1");
    expect(plan.apiVip).toBe("10.77.5.20");
    expect(plan.workers[2].ip).toBe("10.77.5.23");
    expect(plan.metallbPool).toEqual({ first: "10.77.5.220", last: "10.77.5.230" });
  });

  it("embeds the IP in a locally administered unicast MAC", () => {
    expect(macFor("192.168.234.11")).toBe("52:54:c0:a8:ea:0b");
    const firstOctet = parseInt(macFor("10.0.0.1").slice(0, 2), 16);
    expect(firstOctet & 0b10).toBe(0b10);
    expect(firstOctet & 0b01).toBe(0);
  });

  const shapes: [number, number][] = [];
  for (const controlPlanes of [1, 3, 5]) {
    for (const workers of [0, 1, 3, 17, 40]) {
      shapes.push([controlPlanes, workers]);
    }
  }
  it.each(shapes)("keeps %i control planes and %i workers apart and inside the subnet", (c, w) => {
    const plan = planFor({ controlPlanes: c, workers: w });
    expect(plan.controls).toHaveLength(c);
    expect(plan.workers).toHaveLength(w);
    expect(plan.nodes).toHaveLength(1 + c + w);
    const subnet = cidrRange(parseCidr(plan.subnet));
    const reserved = [plan.hostIp, plan.apiVip];
    const ips = plan.nodes.map((n) => n.ip);
    expect(new Set([...ips, ...reserved]).size).toBe(ips.length + reserved.length);
    expect(new Set(plan.nodes.map((n) => n.mac)).size).toBe(plan.nodes.length);
    expect(new Set(plan.kubeletNodes.map((n) => n.podCidr)).size).toBe(c + w);
    for (const ip of ips) {
      const address = parseAddress(ip);
      expect(address).toBeGreaterThan(subnet.first);
      expect(address).toBeLessThan(parseAddress(plan.dhcpRange.first));
    }
  });
});
