/**
 * nodejs_gc_duration_seconds counts every collection. prom-client's own histogram (15.x) took
 * only the first entry of each batch its observer was handed, so collections that came together
 * (as a full collection often comes with scavenges) went uncounted: the benchmarks read full
 * collections from this metric.
 */
import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect, it, vi } from "vitest";
import { ServerMetrics } from "../../src/server/metrics.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

async function majorCount(metrics: ServerMetrics): Promise<number> {
  const line = /^nodejs_gc_duration_seconds_count\{kind="major"\} (\d+)$/m.exec(await metrics.registry.metrics());
  return line ? Number(line[1]) : 0;
}

describe("nodejs_gc_duration_seconds", () => {
  it("counts each of several full collections made in one turn (observed in one batch)", async () => {
    const metrics = new ServerMetrics({ storeRevision: () => Promise.resolve(0) });
    try {
      // In one turn: the observer is handed all five entries in one callback.
      for (let i = 0; i < 5; i++) gc();
      await vi.waitFor(async () => expect(await majorCount(metrics)).toBeGreaterThanOrEqual(5), { timeout: 5000, interval: 10 });
      // One metric under the name, prom-client's help kept.
      const help = (await metrics.registry.metrics()).match(/^# HELP nodejs_gc_duration_seconds .*$/gm);
      expect(help).toEqual(["# HELP nodejs_gc_duration_seconds Garbage collection duration by kind, one of major, minor, incremental or weakcb."]);
    } finally {
      metrics.close();
    }
  });

  it("stops observing once closed", async () => {
    const metrics = new ServerMetrics({ storeRevision: () => Promise.resolve(0) });
    const other = new ServerMetrics({ storeRevision: () => Promise.resolve(0) });
    try {
      metrics.close();
      gc();
      // The other registry's observer sees the collection; by then the closed one would have too.
      await vi.waitFor(async () => expect(await majorCount(other)).toBeGreaterThanOrEqual(1), { timeout: 5000, interval: 10 });
      expect(await majorCount(metrics)).toBe(0);
    } finally {
      other.close();
    }
  });
});
