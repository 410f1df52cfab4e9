/**
 * The block allocator of one cluster range: which node-sized blocks are used, and the next free
 * one. It is only a cache: the truth is the block keys in the store, each written in the same
 * transaction as its node (see src/registry/nodes.ts), so no block ever goes to two nodes — a
 * stale cache only costs a failed compare and another try.
 */
import { formatIP, parseCIDR } from "../validation/net.js";
import type { FamilyRange } from "./config.js";
import { IPAM_PREFIX } from "../model/keys.js";


export class BlockAllocator {
  readonly range: FamilyRange;
  private readonly used: Uint8Array;
  private readonly size: number;
  private readonly shift: bigint;
  private next = 0;
  private free: number;

  constructor(range: FamilyRange) {
    this.range = range;
    this.size = 2 ** (range.nodeMask - range.cluster.prefixLength);
    this.used = new Uint8Array(this.size);
    this.free = this.size;
    this.shift = BigInt((range.family === 4 ? 32 : 128) - range.nodeMask);
  }

  get capacity(): number {
    return this.size;
  }

  get available(): number {
    return this.free;
  }

  /** The text of block `i`: "10.244.3.0/24". */
  cidrOf(i: number): string {
    return `${formatIP(this.range.family, this.range.cluster.network + (BigInt(i) << this.shift))}/${this.range.nodeMask}`;
  }

  /**
   * The block index of a CIDR of this family, or a reason it is not one of this range's blocks
   * (outside the cluster CIDR, or not of the node mask size).
   */
  indexOf(cidr: string): number | string {
    const c = parseCIDR(cidr);
    if (c.family !== this.range.family) return `is not IPv${this.range.family}`;
    if (c.prefixLength !== this.range.nodeMask) return `must be a /${this.range.nodeMask} block (the node CIDR mask size)`;
    const offset = c.network - this.range.cluster.network;
    const index = offset >> this.shift;
    if (offset < 0n || index >= BigInt(this.size)) return `is outside the cluster CIDR ${this.range.text}`;
    return Number(index);
  }

  /** The store key that records who holds block `i`. */
  keyOf(i: number): string {
    return `${IPAM_PREFIX}v${this.range.family}/${this.cidrOf(i).replace("/", "-")}`;
  }

  /** Take the next free block (round robin, like Kubernetes' CIDR set), or undefined when none is free. */
  take(): number | undefined {
    if (this.free === 0) return undefined;
    for (let n = 0; n < this.size; n++) {
      const i = (this.next + n) % this.size;
      if (this.used[i]) continue;
      this.mark(i);
      this.next = (i + 1) % this.size;
      return i;
    }
    return undefined;
  }

  mark(i: number): void {
    if (this.used[i]) return;
    this.used[i] = 1;
    this.free--;
  }

  release(i: number): void {
    if (!this.used[i]) return;
    this.used[i] = 0;
    this.free++;
  }

  isUsed(i: number): boolean {
    return this.used[i] === 1;
  }
}
