/**
 * Pod CIDR allocation settings (Kubernetes' --allocate-node-cidrs family of flags), checked at
 * start-up: a bad combination is refused with a message that says what is wrong.
 */
import { type CIDR, parseCIDR } from "../validation/net.js";

export interface FamilyRange {
  family: 4 | 6;
  cluster: CIDR;
  /** Prefix length of each node's block. */
  nodeMask: number;
  /** The cluster CIDR as written. */
  text: string;
}

export interface IpamFlags {
  clusterCidr: string;
  /** --node-cidr-mask-size (single stack only). */
  nodeCidrMaskSize?: number;
  nodeCidrMaskSizeIpv4?: number;
  nodeCidrMaskSizeIpv6?: number;
}

/** The most blocks one family may have (a node mask at most 16 bits longer than… for IPv6; 2^24 for IPv4). */
const MAX_BITS = { 4: 24, 6: 16 } as const;

class IpamConfigError extends Error {}

/** Validate the flags; the ranges in the order given (the first is the node's primary pod_cidr). */
export function ipamRanges(f: IpamFlags): FamilyRange[] {
  const fail = (msg: string): never => {
    throw new IpamConfigError(msg);
  };
  const texts = f.clusterCidr.split(",").map((s) => s.trim()).filter(Boolean);
  if (texts.length === 0) fail("--allocate-node-cidrs needs --cluster-cidr (e.g. 10.244.0.0/16, or 10.244.0.0/16,fd00:10:244::/56 for dual stack)");
  if (texts.length > 2) fail(`--cluster-cidr: at most two CIDRs (one IPv4 and one IPv6), got ${texts.length}: ${f.clusterCidr}`);
  const cidrs = texts.map((t) => {
    try {
      return { text: t, cidr: parseCIDR(t, "--cluster-cidr") };
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
  });
  if (cidrs.length === 2 && cidrs[0]!.cidr.family === cidrs[1]!.cidr.family) {
    fail(`--cluster-cidr: two IPv${cidrs[0]!.cidr.family} CIDRs (${f.clusterCidr}); dual stack takes one IPv4 and one IPv6`);
  }
  if (f.nodeCidrMaskSize !== undefined && cidrs.length === 2) {
    fail("--node-cidr-mask-size is for single stack only; with dual stack use --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6");
  }
  return cidrs.map(({ text, cidr }) => {
    const family = cidr.family;
    const own = family === 4 ? f.nodeCidrMaskSizeIpv4 : f.nodeCidrMaskSizeIpv6;
    const nodeMask = f.nodeCidrMaskSize ?? own ?? (family === 4 ? 24 : 64);
    const flag = f.nodeCidrMaskSize !== undefined ? "--node-cidr-mask-size" : `--node-cidr-mask-size-ipv${family}`;
    const bits = family === 4 ? 32 : 128;
    if (!Number.isInteger(nodeMask) || nodeMask > bits) fail(`${flag}=${nodeMask}: must be at most ${bits} for IPv${family}`);
    if (nodeMask < cidr.prefixLength) {
      fail(`${flag}=${nodeMask} is shorter than the cluster CIDR's mask /${cidr.prefixLength} (${text}): a node block must fit inside the cluster CIDR`);
    }
    if (nodeMask - cidr.prefixLength > MAX_BITS[family]) {
      fail(
        `${flag}=${nodeMask} is more than ${MAX_BITS[family]} bits longer than the cluster CIDR's mask /${cidr.prefixLength} (${text})` +
          (family === 6 ? ": the IPv6 node mask may be at most 16 bits longer than the cluster mask" : ""),
      );
    }
    return { family, cluster: cidr, nodeMask, text };
  });
}
