/**
 * Pod CIDR allocation (Kubernetes' range allocator, dual stack). The registry asks for blocks
 * when a node is created and writes them in the same store transaction as the node, together
 * with one key per block (compare: must not exist). That key, not this in-memory cache, is what
 * guarantees that no block ever goes to two nodes — across restarts and replicas.
 */
import { InvalidError, quote } from "../errors.js";
import type { FieldViolation } from "../errors.js";
import { cidrFamily } from "../validation/net.js";
import { BlockAllocator } from "./allocator.js";
import { IPAM_PREFIX } from "../model/keys.js";
import type { Logger } from "pino";
import type { SharedInformer } from "../informer/shared.js";
import type { FamilyRange } from "./config.js";

/** Blocks tentatively taken for one node, to be written with it (or given back). */
export interface Claim {
  cidrs: string[];
  keys: string[];
  /** Families with no free block (the node is created without one and allocated later). */
  exhausted: number[];
  taken: { alloc: BlockAllocator; index: number }[];
}

/** Where events go (the registry's EventRecorder). */
export interface EventSink {
  record(event: { nodeName: string; type: "Warning"; reason: string; message: string }): Promise<unknown>;
}

export interface IpamOptions {
  ranges: FamilyRange[];
  /** Where a node created while no block was free gets its CIDRNotAvailable event. */
  events: EventSink;
  log?: Logger;
}

export class Ipam {
  private readonly allocators: BlockAllocator[];

  constructor(private readonly o: IpamOptions) {
    this.allocators = o.ranges.map((r) => new BlockAllocator(r));
  }

  /**
   * Keep the used blocks in step with the store's block keys (every replica: blocks taken or
   * freed by another are seen). Wait for `blocks` to sync before the first claim.
   */
  follow(blocks: SharedInformer<string>): () => void {
    return blocks.subscribe({
      onAdd: (name) => this.markKey(IPAM_PREFIX + name, true),
      onDelete: (name) => this.markKey(IPAM_PREFIX + name, false),
    });
  }

  /**
   * A node was created without a block for some family (none free): its CIDRNotAvailable event.
   * Best effort, as events are: a failed record does not fail the node's write.
   */
  async exhausted(name: string, families: number[]): Promise<void> {
    const message = cidrNotAvailableMessage(this, families);
    this.o.log?.warn({ node: name }, message);
    await this.o.events.record({ nodeName: name, type: "Warning", reason: "CIDRNotAvailable", message }).catch((err: unknown) => {
      this.o.log?.warn({ err, node: name }, "CIDRNotAvailable event not recorded");
    });
  }

  /** "10.244.0.0/16 (256 blocks of /24, 12 free)", for logs and messages. */
  describe(): string {
    return this.allocators.map((a) => `${a.range.text} (${a.capacity} blocks of /${a.range.nodeMask}, ${a.available} free)`).join(", ");
  }

  /**
   * Blocks for a node: its own CIDRs, checked and marked, or one free block per family — all
   * or none (a dual-stack node with only one family free waits for both).
   */
  claim(presetCidrs: readonly string[]): Claim {
    if (presetCidrs.length > 0) return this.claimPreset(presetCidrs);
    const claim: Claim = { cidrs: [], keys: [], exhausted: [], taken: [] };
    for (const alloc of this.allocators) {
      const index = alloc.take();
      if (index === undefined) {
        claim.exhausted.push(alloc.range.family);
        continue;
      }
      claim.taken.push({ alloc, index });
      claim.cidrs.push(alloc.cidrOf(index));
      claim.keys.push(alloc.keyOf(index));
    }
    if (claim.exhausted.length > 0) {
      this.abandon(claim);
      return { cidrs: [], keys: [], exhausted: claim.exhausted, taken: [] };
    }
    return claim;
  }

  /** Give back what a claim took (its transaction did not commit). */
  abandon(claim: Claim): void {
    for (const { alloc, index } of claim.taken) alloc.release(index);
  }

  /** The store keys that record a node's blocks (for its deletion). */
  keysOf(cidrs: readonly string[]): string[] {
    const out: string[] = [];
    for (const cidr of cidrs) {
      const hit = this.locate(cidr);
      if (hit) out.push(hit.alloc.keyOf(hit.index));
    }
    return out;
  }

  /** Blocks of a deleted node are free again. */
  release(cidrs: readonly string[]): void {
    for (const cidr of cidrs) {
      const hit = this.locate(cidr);
      if (hit) hit.alloc.release(hit.index);
    }
  }

  /** A block key exists in the store (loaded at start-up, or seen when a compare failed). */
  markKey(key: string, used: boolean): void {
    const cidr = cidrOfKey(key);
    const hit = cidr === undefined ? undefined : this.locate(cidr);
    if (!hit) return;
    if (used) hit.alloc.mark(hit.index);
    else hit.alloc.release(hit.index);
  }

  private claimPreset(cidrs: readonly string[]): Claim {
    const claim: Claim = { cidrs: [...cidrs], keys: [], exhausted: [], taken: [] };
    const violations: FieldViolation[] = [];
    cidrs.forEach((cidr, i) => {
      const family = cidrFamily(cidr);
      const alloc = this.allocators.find((a) => a.range.family === family);
      const field = `spec.pod_cidrs[${i}]`;
      if (!alloc) {
        violations.push({ field, value: cidr, rule: `is outside the cluster CIDR ${this.allocators.map((a) => a.range.text).join(",")}` });
        return;
      }
      const index = alloc.indexOf(cidr);
      if (typeof index === "string") {
        violations.push({ field, value: cidr, rule: index });
      } else if (alloc.isUsed(index)) {
        violations.push({ field, value: cidr, rule: "is already allocated to another node" });
      } else {
        alloc.mark(index);
        claim.taken.push({ alloc, index });
        claim.keys.push(alloc.keyOf(index));
      }
    });
    if (violations.length > 0) {
      this.abandon(claim);
      throw new InvalidError(violations);
    }
    return claim;
  }

  private locate(cidr: string): { alloc: BlockAllocator; index: number } | undefined {
    const family = cidrFamily(cidr);
    const alloc = this.allocators.find((a) => a.range.family === family);
    const index = alloc?.indexOf(cidr);
    return alloc && typeof index === "number" ? { alloc, index } : undefined;
  }
}

/** "/registry/ipam/v4/10.244.3.0-24" → "10.244.3.0/24". */
function cidrOfKey(key: string): string | undefined {
  if (!key.startsWith(IPAM_PREFIX)) return undefined;
  const rest = key.slice(IPAM_PREFIX.length + 3);
  const dash = rest.lastIndexOf("-");
  return dash < 0 ? undefined : `${rest.slice(0, dash)}/${rest.slice(dash + 1)}`;
}

/** The condition a node gets while no block is free for it. */
export function cidrNotAvailableMessage(ipam: Ipam, families: number[]): string {
  return `no pod CIDR block is free for IPv${families.join(" and IPv")} in ${quote(ipam.describe(), 200)}; the node is allocated one as soon as a block frees up`;
}
