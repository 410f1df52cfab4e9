import { describe, expect, it } from "vitest";
import { cidrFamily, cidrViolations, isIPAddress, parseCIDR, parseIP, podCIDRsViolations } from "../../src/validation/net.js";
import { invalidErrorOf } from "./helpers.js";

describe("parseIP", () => {
  const valid: { name: string; input: string; family: 4 | 6; value: bigint }[] = [
    { name: "IPv4", input: "10.0.0.1", family: 4, value: 0x0a000001n },
    { name: "IPv4 all zeros", input: "0.0.0.0", family: 4, value: 0n },
    { name: "IPv4 broadcast", input: "255.255.255.255", family: 4, value: 0xffffffffn },
    { name: "IPv6 full form", input: "fd00:0:0:0:0:0:0:1", family: 6, value: (0xfd00n << 112n) | 1n },
    { name: "IPv6 compressed", input: "fd00::1", family: 6, value: (0xfd00n << 112n) | 1n },
    { name: "IPv6 upper case", input: "FD00::A", family: 6, value: (0xfd00n << 112n) | 0xan },
    { name: "IPv6 unspecified", input: "::", family: 6, value: 0n },
    { name: "IPv6 loopback", input: "::1", family: 6, value: 1n },
    { name: "IPv6 trailing ::", input: "fe80::", family: 6, value: 0xfe80n << 112n },
    { name: "IPv4-mapped IPv6", input: "::ffff:10.0.0.1", family: 6, value: (0xffffn << 32n) | 0x0a000001n },
  ];
  it.each(valid)("$name: $input", ({ input, family, value }) => {
    expect(parseIP(input)).toEqual({ family, value });
    expect(isIPAddress(input)).toBe(true);
  });

  const invalid: { name: string; input: string }[] = [
    { name: "empty", input: "" },
    { name: "IPv4 octet over 255", input: "10.0.0.256" },
    { name: "IPv4 with three octets", input: "10.0.1" },
    { name: "IPv4 with leading zeros", input: "010.0.0.1" },
    { name: "IPv4 with a port", input: "10.0.0.1:80" },
    { name: "IPv4 with surrounding space", input: " 10.0.0.1" },
    { name: "IPv6 with two '::'", input: "1::2::3" },
    { name: "IPv6 with a zone", input: "fe80::1%eth0" },
    { name: "IPv6 in brackets", input: "[::1]" },
    { name: "IPv6 group over 16 bits", input: "fd00::10000" },
    { name: "host name", input: "node-1.example.com" },
    { name: "CIDR is not an address", input: "10.0.0.0/8" },
  ];
  it.each(invalid)("$name: $input is not an address", ({ input }) => {
    expect(parseIP(input)).toBeUndefined();
    expect(isIPAddress(input)).toBe(false);
  });
});

describe("parseCIDR", () => {
  const valid: { name: string; input: string; family: 4 | 6; prefixLength: number; network: bigint }[] = [
    { name: "IPv4 /24", input: "10.244.1.0/24", family: 4, prefixLength: 24, network: 0x0af40100n },
    { name: "IPv4 /0", input: "0.0.0.0/0", family: 4, prefixLength: 0, network: 0n },
    { name: "IPv4 /32 host route", input: "10.0.0.1/32", family: 4, prefixLength: 32, network: 0x0a000001n },
    { name: "IPv6 /64", input: "fd00:10:244:1::/64", family: 6, prefixLength: 64, network: 0xfd000010024400010000000000000000n },
    { name: "IPv6 /0", input: "::/0", family: 6, prefixLength: 0, network: 0n },
    { name: "IPv6 /128", input: "fd00::1/128", family: 6, prefixLength: 128, network: (0xfd00n << 112n) | 1n },
  ];
  it.each(valid)("$name: $input", ({ input, family, prefixLength, network }) => {
    expect(parseCIDR(input)).toEqual({ family, prefixLength, network });
    expect(cidrViolations(input)).toEqual([]);
    expect(cidrFamily(input)).toBe(family);
  });

  const invalid: { name: string; input: string; rule: string }[] = [
    {
      name: "no prefix length",
      input: "10.0.0.0",
      rule: 'must be a CIDR: an IPv4 or IPv6 address, "/" and a prefix length (e.g. "10.244.0.0/24", "fd00:10:244::/64")',
    },
    { name: "bad address", input: "10.0.0.300/24", rule: 'must be a CIDR: "10.0.0.300" is not a valid IPv4 or IPv6 address' },
    { name: "empty address", input: "/24", rule: 'must be a CIDR: "" is not a valid IPv4 or IPv6 address' },
    { name: "IPv4 prefix length 33", input: "10.0.0.0/33", rule: "must be a CIDR: prefix length must be a whole number from 0 to 32 for IPv4" },
    { name: "IPv6 prefix length 129", input: "fd00::/129", rule: "must be a CIDR: prefix length must be a whole number from 0 to 128 for IPv6" },
    { name: "negative prefix length", input: "10.0.0.0/-1", rule: "must be a CIDR: prefix length must be a whole number from 0 to 32 for IPv4" },
    { name: "empty prefix length", input: "10.0.0.0/", rule: "must be a CIDR: prefix length must be a whole number from 0 to 32 for IPv4" },
    { name: "prefix length with leading zero", input: "10.0.0.0/08", rule: "must be a CIDR: prefix length must be a whole number from 0 to 32 for IPv4" },
    { name: "two slashes", input: "10.0.0.0/8/8", rule: "must be a CIDR: prefix length must be a whole number from 0 to 32 for IPv4" },
    { name: "IPv4 host bits set", input: "10.244.1.7/24", rule: "must be a CIDR with host bits zero: did you mean 10.244.1.0/24?" },
    { name: "IPv4 host bits set at /0", input: "10.0.0.0/0", rule: "must be a CIDR with host bits zero: did you mean 0.0.0.0/0?" },
    { name: "IPv6 host bits set", input: "fd00:10:244:1::5/64", rule: "must be a CIDR with host bits zero: did you mean fd00:10:244:1::/64?" },
    { name: "IPv6 host bits set, one zero group is not compressed", input: "1:0:3:4:5:6:7:9/127", rule: "must be a CIDR with host bits zero: did you mean 1:0:3:4:5:6:7:8/127?" },
    { name: "IPv6 host bits set, the longest zero run is compressed", input: "1:0:0:4:0:0:0:9/120", rule: "must be a CIDR with host bits zero: did you mean 1:0:0:4::/120?" },
  ];
  it.each(invalid)("$name: $input", ({ input, rule }) => {
    expect(cidrViolations(input)).toEqual([rule]);
    expect(cidrFamily(input)).toBeUndefined();
    const e = invalidErrorOf(() => parseCIDR(input, "spec.pod_cidr"));
    expect(e.violations).toEqual([{ field: "spec.pod_cidr", value: input, rule }]);
  });
});

describe("podCIDRsViolations", () => {
  const rows: { name: string; cidrs: string[]; fields: string[] }[] = [
    { name: "none", cidrs: [], fields: [] },
    { name: "one IPv4", cidrs: ["10.244.1.0/24"], fields: [] },
    { name: "one IPv6", cidrs: ["fd00:10:244:1::/64"], fields: [] },
    { name: "dual stack, IPv4 first", cidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"], fields: [] },
    { name: "dual stack, IPv6 first", cidrs: ["fd00:10:244:1::/64", "10.244.1.0/24"], fields: [] },
    { name: "two IPv4 CIDRs", cidrs: ["10.244.1.0/24", "10.244.2.0/24"], fields: ["spec.pod_cidrs[1]"] },
    { name: "two IPv6 CIDRs", cidrs: ["fd00:1::/64", "fd00:2::/64"], fields: ["spec.pod_cidrs[1]"] },
    { name: "an invalid entry", cidrs: ["10.244.1.0/24", "nope"], fields: ["spec.pod_cidrs[1]"] },
    {
      name: "three entries",
      cidrs: ["10.244.1.0/24", "fd00:1::/64", "10.244.2.0/24"],
      fields: ["spec.pod_cidrs[2]", "spec.pod_cidrs[2]"],
    },
  ];
  it.each(rows)("$name", ({ cidrs, fields }) => {
    expect(podCIDRsViolations(cidrs, "spec.pod_cidrs").map((v) => v.field)).toEqual(fields);
  });

  it("says which entry already holds the family", () => {
    expect(podCIDRsViolations(["10.244.1.0/24", "10.244.2.0/24"], "spec.pod_cidrs")).toEqual([
      {
        field: "spec.pod_cidrs[1]",
        value: "10.244.2.0/24",
        rule: "at most one IPv4 CIDR is allowed, and spec.pod_cidrs[0] is already IPv4",
      },
    ]);
  });

  it("says how many entries are allowed", () => {
    expect(podCIDRsViolations(["10.244.1.0/24", "fd00:1::/64", "fd00:2::/64"], "spec.pod_cidrs")).toContainEqual({
      field: "spec.pod_cidrs[2]",
      value: "fd00:2::/64",
      rule: "spec.pod_cidrs must have at most 2 entries (one IPv4 and one IPv6)",
    });
  });
});
