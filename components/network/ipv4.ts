/**
 * The small amount of IPv4 arithmetic the address plan needs. Parsing and validation are
 * delegated to ipaddr.js; everything here works on addresses as unsigned 32-bit integers.
 */
import * as ipaddr from "ipaddr.js";

/** An IPv4 network in CIDR form, e.g. 10.200.0.0/16. */
export interface Cidr {
  readonly network: number;
  readonly prefix: number;
}

/** An inclusive range of IPv4 addresses. */
export interface AddressRange {
  readonly first: number;
  readonly last: number;
}

export function parseAddress(text: string): number {
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) {
    throw new Error(`"${text}" is not an IPv4 address in dotted-decimal form`);
  }
  const [a, b, c, d] = ipaddr.IPv4.parse(text).octets;
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

export function formatAddress(address: number): string {
  return [24, 16, 8, 0].map((shift) => (address >>> shift) & 0xff).join(".");
}

/** The netmask of a prefix length as an integer, e.g. 24 -> 255.255.255.0. */
export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n", refusing host bits so that the text means exactly one network. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  if (slash < 0) {
    throw new Error(`"${text}" is not in CIDR form (address/prefix)`);
  }
  const address = parseAddress(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,2}$/.test(prefixText) || prefix > 32) {
    throw new Error(`"${text}" has an invalid prefix length`);
  }
  const network = (address & mask(prefix)) >>> 0;
  if (network !== address) {
    throw new Error(
      `"${text}" has host bits set; did you mean ${formatAddress(network)}/${prefix}?`,
    );
  }
  return { network, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.network)}/${cidr.prefix}`;
}

export function cidrRange(cidr: Cidr): AddressRange {
  return { first: cidr.network, last: (cidr.network + 2 ** (32 - cidr.prefix) - 1) >>> 0 };
}

/** The n-th address of a network, counting the network address as 0. */
export function nthAddress(cidr: Cidr, n: number): number {
  const size = 2 ** (32 - cidr.prefix);
  if (!Number.isInteger(n) || n < 0 || n >= size) {
    throw new Error(`address #${n} is outside ${formatCidr(cidr)}`);
  }
  return cidr.network + n;
}

/** The n-th subnet of length `prefix` inside `cidr`, e.g. the 3rd /24 of a /16. */
export function nthSubnet(cidr: Cidr, prefix: number, n: number): Cidr {
  if (prefix < cidr.prefix || prefix > 32) {
    throw new Error(`a /${prefix} cannot be carved out of ${formatCidr(cidr)}`);
  }
  const count = 2 ** (prefix - cidr.prefix);
  if (!Number.isInteger(n) || n < 0 || n >= count) {
    throw new Error(`${formatCidr(cidr)} holds only ${count} /${prefix} subnets, not ${n + 1}`);
  }
  return { network: cidr.network + n * 2 ** (32 - prefix), prefix };
}

export function rangesOverlap(a: AddressRange, b: AddressRange): boolean {
  return a.first <= b.last && b.first <= a.last;
}

export function rangeContains(outer: AddressRange, inner: AddressRange): boolean {
  return outer.first <= inner.first && inner.last <= outer.last;
}

/** Parses "first-last" (both full addresses), e.g. "192.168.234.200-192.168.234.250". */
export function parseRange(text: string): AddressRange {
  const parts = text.split("-");
  if (parts.length !== 2) {
    throw new Error(`"${text}" is not a range of the form first-last`);
  }
  const first = parseAddress(parts[0].trim());
  const last = parseAddress(parts[1].trim());
  if (first > last) {
    throw new Error(`"${text}" ends before it starts`);
  }
  return { first, last };
}

export function formatRange(range: AddressRange): string {
  return `${formatAddress(range.first)}-${formatAddress(range.last)}`;
}

/** True for RFC 1918 private addresses, the only ones a workstation network should use. */
export function isPrivate(address: number): boolean {
  return ipaddr.IPv4.parse(formatAddress(address)).range() === "private";
}

/** The blocks a cluster may take its pod and service networks from: RFC 1918 and RFC 6598. */
export const INTERNAL_BLOCKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"];

/**
 * True when every address of the range is in one of the INTERNAL_BLOCKS. Public, loopback and
 * link-local networks are not: the host would route public addresses into the cluster.
 */
export function isInternalRange(range: AddressRange): boolean {
  return INTERNAL_BLOCKS.some((block) => rangeContains(cidrRange(parseCidr(block)), range));
}
