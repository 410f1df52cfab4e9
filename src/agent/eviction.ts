/**
 * The kubelet's --eviction-hard syntax for the pressure thresholds the agent reports against:
 * `memory.available<100Mi,nodefs.available<10%,pid.available<5%`.
 */
import { InvalidError } from "../errors.js";
import { parseQuantity } from "../validation/quantity.js";

/** A threshold: an absolute quantity, or a share of the total. */
export type Threshold = { quantity: number } | { percent: number };

export interface EvictionThresholds {
  memoryAvailable: Threshold;
  nodefsAvailable: Threshold;
  pidAvailable: Threshold;
}

const DEFAULT_EVICTION_HARD = "memory.available<100Mi,nodefs.available<10%,pid.available<5%";

const SIGNALS: Record<string, keyof EvictionThresholds> = {
  "memory.available": "memoryAvailable",
  "nodefs.available": "nodefsAvailable",
  "pid.available": "pidAvailable",
};

export function parseEvictionHard(spec: string): EvictionThresholds {
  const out = parseItems(DEFAULT_EVICTION_HARD);
  for (const [key, t] of Object.entries(parseItems(spec))) out[key as keyof EvictionThresholds] = t;
  return out as EvictionThresholds;
}

function parseItems(spec: string): Partial<EvictionThresholds> {
  const out: Partial<EvictionThresholds> = {};
  for (const item of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z.]+)<(.+)$/.exec(item);
    const bad = (rule: string): InvalidError => InvalidError.of("--eviction-hard", item, rule);
    if (!m) throw bad("must be signal<threshold, e.g. memory.available<100Mi");
    const signal = SIGNALS[m[1]!];
    if (!signal) throw bad(`unknown signal: known are ${Object.keys(SIGNALS).join(", ")}`);
    const value = m[2]!;
    if (value.endsWith("%")) {
      const percent = Number(value.slice(0, -1));
      if (!Number.isFinite(percent) || percent < 0 || percent > 100) throw bad("a percentage must be between 0% and 100%");
      out[signal] = { percent };
    } else {
      out[signal] = { quantity: parseQuantity(value, "--eviction-hard") };
    }
  }
  return out;
}

/** Is `available` of `total` under the threshold? */
export function under(t: Threshold, available: number, total: number): boolean {
  return "percent" in t ? available < (total * t.percent) / 100 : available < t.quantity;
}

/** The threshold in the units of `total` (for allocatable = capacity − threshold). */
export function amountOf(t: Threshold, total: number): number {
  return "percent" in t ? (total * t.percent) / 100 : t.quantity;
}
