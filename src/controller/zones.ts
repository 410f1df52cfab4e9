/**
 * Zones and their disruption states (Kubernetes' node lifecycle controller): a zone is the
 * region + zone labels; its state decides how fast NoExecute taints may be added in it.
 */
import type { Clock } from "../clock.js";
import type { FullNode } from "../model/node.js";

export type ZoneState = "Initial" | "Normal" | "PartialDisruption" | "FullDisruption";

const REGION_LABEL = "topology.kubernetes.io/region";
const ZONE_LABEL = "topology.kubernetes.io/zone";
export const EXCLUDE_DISRUPTION_LABEL = "node.kubernetes.io/exclude-disruption";

/** The zone a node belongs to ("" when it has neither label), as Kubernetes' GetZoneKey. */
export function zoneOf(node: FullNode): string {
  const labels = node.metadata.labels;
  const region = labels[REGION_LABEL] ?? "";
  const zone = labels[ZONE_LABEL] ?? "";
  return region === "" && zone === "" ? "" : `${region}:\x00:${zone}`;
}

/** A zone key as people read it. */
export function zoneName(zone: string): string {
  if (zone === "") return "(no zone)";
  const [region, , name] = zone.split(":");
  return region ? `${region}/${name}` : (name ?? zone);
}

export interface ZoneThresholds {
  /** Share of not-ready nodes (with more than 2 of them) that makes a zone PartialDisruption. */
  unhealthyZoneThreshold: number;
}

/** Kubernetes' ComputeZoneState. */
export function computeZoneState(ready: number, notReady: number, t: ZoneThresholds): ZoneState {
  if (ready === 0 && notReady > 0) return "FullDisruption";
  if (notReady > 2 && notReady / (ready + notReady) >= t.unhealthyZoneThreshold) return "PartialDisruption";
  return "Normal";
}

export interface EvictionRates {
  /** NoExecute taints per second in a Normal or fully disrupted zone. */
  nodeEvictionRate: number;
  /** …in a partially disrupted large zone. */
  secondaryNodeEvictionRate: number;
  /** Zones with more nodes than this are "large". */
  largeClusterSizeThreshold: number;
}

/** Kubernetes' setLimiterInZone: the tainting rate for a zone of `size` nodes in `state`. */
export function zoneRate(state: ZoneState, size: number, r: EvictionRates): number {
  switch (state) {
    case "Normal":
    case "Initial":
    case "FullDisruption":
      return r.nodeEvictionRate;
    case "PartialDisruption":
      return size > r.largeClusterSizeThreshold ? r.secondaryNodeEvictionRate : 0;
  }
}

/**
 * A token bucket with burst 1 on the injected clock; rate 0 never admits. With a burst of one
 * token it is simply "the next token comes 1/rate after the last one was taken" (kept in whole
 * milliseconds, so no rounding drift accumulates).
 */
export class TokenBucket {
  /** Clock time from which a token is available. */
  private nextAt = -Infinity;

  constructor(
    private rate: number,
    private readonly clock: Clock,
  ) {}

  /**
   * Change the rate as Kubernetes' SwapLimiter does: the new bucket starts full only if the old
   * one had a token to give (which is taken); otherwise the first token comes 1/rate from now.
   */
  setRate(rate: number): void {
    if (rate === this.rate) return;
    const hadToken = this.tryTake();
    this.rate = rate;
    this.nextAt = hadToken || rate <= 0 ? -Infinity : this.clock.now() + Math.round(1000 / rate);
  }

  tryTake(): boolean {
    if (this.rate <= 0) return false;
    const now = this.clock.now();
    if (now < this.nextAt) return false;
    this.nextAt = now + Math.round(1000 / this.rate);
    return true;
  }
}

/** Nodes waiting for a NoExecute taint in one zone, first come first served, each once. */
export class ZoneQueue {
  private readonly names = new Set<string>();

  constructor(readonly bucket: TokenBucket) {}

  add(name: string): void {
    this.names.add(name);
  }

  remove(name: string): void {
    this.names.delete(name);
  }

  clear(): void {
    this.names.clear();
  }

  get size(): number {
    return this.names.size;
  }

  /** Take nodes as the bucket admits; `stillWanted` drops (without a token) those that recovered. */
  *drain(stillWanted: (name: string) => boolean): Generator<string> {
    for (const name of [...this.names]) {
      if (!stillWanted(name)) {
        this.names.delete(name);
        continue;
      }
      if (!this.bucket.tryTake()) return;
      this.names.delete(name);
      yield name;
    }
  }
}
