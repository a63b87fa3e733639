import {
  cidrRange,
  formatAddress,
  formatCidr,
  nthAddress,
  nthSubnet,
  parseAddress,
  parseCidr,
  parseRange,
  rangeContains,
  rangesOverlap,
} from "../../components/network/ipv4";

describe("ipv4", () => {
  it.each(["0.0.0.0", "10.200.3.4", "192.168.234.1", "255.255.255.255"])(
    "round-trips %s",
    (text) => {
      expect(formatAddress(parseAddress(text))).toBe(text);
    },
  );

  it.each(["10.0.0", "10.0.0.256", "010.0.0.1", "a.b.c.d", "10.0.0.1 ", "::1"])(
    "refuses %j as an address",
    (text) => {
      expect(() => parseAddress(text)).toThrow(/not an IPv4 address/);
    },
  );

  it.each([
    ["10.200.0.0/16", "10.200.0.0", "10.200.255.255"],
    ["192.168.234.0/24", "192.168.234.0", "192.168.234.255"],
    ["0.0.0.0/0", "0.0.0.0", "255.255.255.255"],
    ["10.1.2.3/32", "10.1.2.3", "10.1.2.3"],
  ])("%s spans %s to %s", (cidr, first, last) => {
    const range = cidrRange(parseCidr(cidr));
    expect(formatAddress(range.first)).toBe(first);
    expect(formatAddress(range.last)).toBe(last);
    expect(formatCidr(parseCidr(cidr))).toBe(cidr);
  });

  it("refuses a network with host bits and says which network was meant", () => {
    expect(() => parseCidr("10.200.1.0/16")).toThrow(/did you mean 10\.200\.0\.0\/16/);
  });

  it.each(["10.0.0.0", "10.0.0.0/33", "10.0.0.0/x", "10.0.0.0/"])("refuses %j as a CIDR", (t) => {
    expect(() => parseCidr(t)).toThrow();
  });

  it("counts addresses and subnets from the network address", () => {
    const cluster = parseCidr("10.200.0.0/16");
    expect(formatAddress(nthAddress(parseCidr("10.32.0.0/16"), 10))).toBe("10.32.0.10");
    expect(formatCidr(nthSubnet(cluster, 24, 0))).toBe("10.200.0.0/24");
    expect(formatCidr(nthSubnet(cluster, 24, 255))).toBe("10.200.255.0/24");
    expect(() => nthSubnet(cluster, 24, 256)).toThrow(/holds only 256/);
    expect(() => nthAddress(parseCidr("10.0.0.0/24"), 256)).toThrow(/outside/);
  });

  it("decides overlap and containment on inclusive ranges", () => {
    const r = (t: string) => parseRange(t);
    expect(rangesOverlap(r("10.0.0.1-10.0.0.5"), r("10.0.0.5-10.0.0.9"))).toBe(true);
    expect(rangesOverlap(r("10.0.0.1-10.0.0.4"), r("10.0.0.5-10.0.0.9"))).toBe(false);
    expect(rangeContains(r("10.0.0.0-10.0.0.255"), r("10.0.0.200-10.0.0.250"))).toBe(true);
    expect(rangeContains(r("10.0.0.0-10.0.0.255"), r("10.0.0.200-10.0.1.0"))).toBe(false);
    expect(() => r("10.0.0.9-10.0.0.1")).toThrow(/ends before it starts/);
  });
});
