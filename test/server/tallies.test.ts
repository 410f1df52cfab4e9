/**
 * The per-call metrics kept as plain numbers (src/server/tallies.ts) read exactly as prom-client's
 * own counter and histogram fed the same calls: the same text lines on a scrape, the same values
 * from get(), the sums taken again after each read, and nothing after a reset.
 */
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { CallLatency, TalliedCounter } from "../../src/server/tallies.js";

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The registry's text, its lines sorted (the two keep label sets in different orders). */
const lines = async (r: Registry): Promise<string[]> => (await r.metrics()).split("\n").filter((l) => l !== "").sort();

describe("tallied metrics", () => {
  it("a tallied counter scrapes as prom-client's counter, one or two labels, read again and again", async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const calls = new TalliedCounter({ name: "calls_total", help: "Calls.", labelNames: ["method", "code"] as const, registers: [mine] });
    const events = new TalliedCounter({ name: "events_total", help: "Events.", labelNames: ["type"] as const, registers: [mine] });
    const callsRef = new Counter({ name: "calls_total", help: "Calls.", labelNames: ["method", "code"] as const, registers: [theirs] });
    const eventsRef = new Counter({ name: "events_total", help: "Events.", labelNames: ["type"] as const, registers: [theirs] });
    const feed = (method: string, code: string, n: number): void => {
      for (let i = 0; i < n; i++) {
        calls.add(method, code);
        callsRef.inc({ method, code });
      }
    };
    feed("RenewLease", "OK", 5);
    feed("RenewLease", "NOT_FOUND", 2);
    // Label values that a joined string key would run together stay their own label sets.
    feed("Get\u0000Node", "OK", 1);
    feed("Get", "Node\u0000OK", 3);
    for (const type of ["ADDED", "MODIFIED", "MODIFIED"]) {
      events.add(type);
      eventsRef.inc({ type });
    }
    expect(await lines(mine)).toEqual(await lines(theirs));
    // Read twice with nothing between: counted once.
    expect(await lines(mine)).toEqual(await lines(theirs));
    feed("RenewLease", "OK", 4);
    expect(await lines(mine)).toEqual(await lines(theirs));
    expect((await calls.get()).values.find((v) => v.labels.method === "RenewLease" && v.labels.code === "OK")?.value).toBe(9);
    // A reset drops the counts not yet read too.
    feed("RenewLease", "OK", 2);
    mine.resetMetrics();
    theirs.resetMetrics();
    expect(await lines(mine)).toEqual(await lines(theirs));
    feed("RenewLease", "OK", 1);
    expect(await lines(mine)).toEqual(await lines(theirs));
  });

  it("the call latency histogram scrapes as prom-client's histogram, edges of buckets included", async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const latency = new CallLatency({ name: "handling_seconds", help: "Time.", buckets: BUCKETS, registers: [mine] });
    const ref = new Histogram({ name: "handling_seconds", help: "Time.", labelNames: ["method"] as const, buckets: BUCKETS, registers: [theirs] });
    const seconds = [0, 0.0001, 0.0005, 0.00050001, 0.001, 0.003, 0.1, 0.7, 2.5, 2.6, 90];
    for (const [i, s] of seconds.entries()) {
      const method = i % 3 === 0 ? "UpdateStatus" : "RenewLease";
      latency.record(method, s);
      ref.observe({ method }, s);
    }
    expect(await lines(mine)).toEqual(await lines(theirs));
    // get() as well (prom-client adds an empty exemplar to its buckets' values).
    const plain = (vs: Array<{ metricName?: string; labels: object; value: number }>) =>
      vs.map(({ metricName, labels, value }) => ({ metricName, labels, value })).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    expect(plain((await latency.get()).values)).toEqual(plain((await ref.get()).values));
    latency.reset();
    ref.reset();
    expect(await lines(mine)).toEqual(await lines(theirs));
  });

  it("refuses what it does not keep: prom-client's observe, labels, zero and remove, a counter's remove", () => {
    const latency: Histogram<"method"> = new CallLatency({ name: "h_seconds", help: "Time.", buckets: BUCKETS, registers: [new Registry()] });
    expect(() => latency.observe({ method: "X" }, 1)).toThrow(/record\(method, seconds\)/);
    expect(() => latency.labels("X")).toThrow(/record\(method, seconds\)/);
    expect(() => latency.zero({ method: "X" })).toThrow(/record\(method, seconds\)/);
    expect(() => latency.remove("X")).toThrow(/not removed/);
    const counter: Counter<"type"> = new TalliedCounter({ name: "c_total", help: "C.", labelNames: ["type"] as const, registers: [new Registry()] });
    expect(() => counter.remove("X")).toThrow(/not removed/);
  });
});
