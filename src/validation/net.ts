/**
 * IP addresses and CIDR prefixes. Addresses are dotted-quad IPv4 (no leading zeros) or RFC 4291
 * IPv6 text (an embedded IPv4 tail allowed; no zone, no brackets); an IPv4-mapped IPv6 address
 * ("::ffff:10.0.0.1") counts as IPv6. CIDRs are stricter than Kubernetes'
 * netutils.ParseCIDRSloppy: the host bits must be zero.
 */
import { isIP } from "node:net";
import { type FieldViolation, InvalidError } from "../errors.js";

export interface IPAddress {
  family: 4 | 6;
  /** The address as an unsigned 32- or 128-bit integer. */
  value: bigint;
}

export interface CIDR {
  family: 4 | 6;
  prefixLength: number;
  /** The network address as an unsigned 32- or 128-bit integer (host bits zero). */
  network: bigint;
}

const BITS = { 4: 32, 6: 128 } as const;
const MAX_PER_LIST = 2;

function parseIPv4(s: string): bigint {
  return s.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseIPv6(s: string): bigint {
  const groupsOf = (half: string): number[] => {
    if (half === "") return [];
    return half.split(":").flatMap((g) => {
      if (!g.includes(".")) return [Number.parseInt(g, 16)];
      const v4 = Number(parseIPv4(g));
      return [v4 >>> 16, v4 & 0xffff];
    });
  };
  const halves = s.split("::");
  const head = groupsOf(halves[0] ?? "");
  const tail = halves.length > 1 ? groupsOf(halves[1] ?? "") : [];
  const groups = halves.length > 1 ? [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** The family of an IPv4 or IPv6 address, 0 if `s` is none. */
function ipFamily(s: string): 0 | 4 | 6 {
  const family = isIP(s);
  // node:net accepts zone ids ("fe80::1%eth0"); an address in an API object must not carry one.
  return family === 4 || (family === 6 && !s.includes("%")) ? family : 0;
}

/** Whether `s` is an IPv4 or IPv6 address (what parseIP accepts), without computing its value. */
export const isIPAddress = (s: string): boolean => ipFamily(s) !== 0;

/** Parses an IPv4 or IPv6 address ("10.0.0.1", "fd00::1", "::ffff:10.0.0.1"); undefined if it is none. */
export function parseIP(s: string): IPAddress | undefined {
  const family = ipFamily(s);
  if (family === 4) return { family, value: parseIPv4(s) };
  if (family === 6) return { family, value: parseIPv6(s) };
  return undefined;
}

/** The canonical text of an address: dotted quad, or RFC 5952 IPv6. */
export function formatIP(family: 4 | 6, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // The longest run of two or more zero groups (the first of equal runs) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** A CIDR, or the rule the text breaks. */
function interpretCIDR(s: string): CIDR | string {
  const slash = s.indexOf("/");
  if (slash < 0) {
    return 'must be a CIDR: an IPv4 or IPv6 address, "/" and a prefix length (e.g. "10.244.0.0/24", "fd00:10:244::/64")';
  }
  const address = s.slice(0, slash);
  const length = s.slice(slash + 1);
  const ip = parseIP(address);
  if (!ip) return `must be a CIDR: ${JSON.stringify(address)} is not a valid IPv4 or IPv6 address`;
  const bits = BITS[ip.family];
  if (!/^(0|[1-9][0-9]{0,2})$/.test(length) || Number(length) > bits) {
    return `must be a CIDR: prefix length must be a whole number from 0 to ${bits} for IPv${ip.family}`;
  }
  const prefixLength = Number(length);
  const hostBits = BigInt(bits - prefixLength);
  const network = (ip.value >> hostBits) << hostBits;
  if (network !== ip.value) {
    return `must be a CIDR with host bits zero: did you mean ${formatIP(ip.family, network)}/${prefixLength}?`;
  }
  return { family: ip.family, prefixLength, network };
}

/**
 * Parses a CIDR prefix ("10.244.0.0/24", "fd00::/64") whose host bits are zero.
 * @throws InvalidError naming `field` when `s` is not one.
 */
export function parseCIDR(s: string, field = "cidr"): CIDR {
  const c = interpretCIDR(s);
  if (typeof c === "string") throw InvalidError.of(field, s, c);
  return c;
}

/** The rules `s` breaks as a CIDR (host bits zero); empty when it is one. */
export function cidrViolations(s: string): string[] {
  const c = interpretCIDR(s);
  return typeof c === "string" ? [c] : [];
}

/** The IP family of a valid CIDR, undefined when `s` is not one. */
export function cidrFamily(s: string): 4 | 6 | undefined {
  const c = interpretCIDR(s);
  return typeof c === "string" ? undefined : c.family;
}

/**
 * Every violation in a pod CIDR list at `field` (e.g. "spec.pod_cidrs"): each entry a valid
 * CIDR, at most one per IP family, at most two in all (dual stack).
 */
export function podCIDRsViolations(cidrs: readonly string[], field: string): FieldViolation[] {
  const out: FieldViolation[] = [];
  const firstOfFamily = new Map<4 | 6, number>();
  cidrs.forEach((cidr, i) => {
    const at = `${field}[${i}]`;
    const c = interpretCIDR(cidr);
    if (typeof c === "string") {
      out.push({ field: at, value: cidr, rule: c });
    } else {
      const first = firstOfFamily.get(c.family);
      if (first === undefined) firstOfFamily.set(c.family, i);
      else {
        out.push({
          field: at,
          value: cidr,
          rule: `at most one IPv${c.family} CIDR is allowed, and ${field}[${first}] is already IPv${c.family}`,
        });
      }
    }
    if (i >= MAX_PER_LIST) {
      out.push({
        field: at,
        value: cidr,
        rule: `${field} must have at most ${MAX_PER_LIST} entries (one IPv4 and one IPv6)`,
      });
    }
  });
  return out;
}
