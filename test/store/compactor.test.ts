/**
 * Compactor: the retained window is at least minAgeMs old AND at least minEvents long. The
 * store is a fake whose revision the test sets; the clock is stepped by hand; ticks are
 * called directly (and once through injected timers).
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { UnavailableError } from "../../src/errors.js";
import { Compactor, type CompactorOptions, type Timers } from "../../src/store/compactor.js";

class FakeStore {
  revision = 0;
  compacted = 0;
  calls: number[] = [];
  failWith: Error | undefined;

  async currentRevision(): Promise<number> {
    if (this.failWith) throw this.failWith;
    return this.revision;
  }
  async compactRevision(): Promise<number> {
    return this.compacted;
  }
  async compact(revision: number): Promise<void> {
    this.calls.push(revision);
    this.compacted = Math.max(this.compacted, revision);
  }
}

const MIN = 60_000;

function setup(opts: Partial<CompactorOptions> = {}) {
  const store = new FakeStore();
  const clock = new FakeClock(0);
  const errors: Error[] = [];
  const compactor = new Compactor({
    store,
    clock,
    onError: (e) => errors.push(e),
    minAgeMs: 5 * MIN,
    minEvents: 100,
    ...opts,
  });
  /** Set the revision, step the clock, tick. */
  const at = async (minute: number, revision: number) => {
    clock.set(minute * MIN);
    store.revision = revision;
    return compactor.tick();
  };
  return { store, clock, errors, compactor, at };
}

describe("Compactor", () => {
  it("compacts to the newest revision that is both minAgeMs old and minEvents behind", async () => {
    const { store, at } = setup();
    expect(await at(0, 1000)).toBeUndefined(); // nothing is old enough yet
    expect(await at(1, 1200)).toBeUndefined();
    expect(await at(4, 1500)).toBeUndefined();
    expect(await at(5, 1600)).toBe(1000); // 1000 was current 5 minutes ago
    expect(await at(6, 1700)).toBe(1200);
    expect(await at(8, 1750)).toBeUndefined(); // 1200 is still the newest 5-minute-old sample: done already
    expect(store.calls).toEqual([1000, 1200]);
    expect(await at(9, 1800)).toBe(1500);
  });

  it("keeps minEvents revisions even when they are all older than minAgeMs", async () => {
    const { store, at } = setup();
    await at(0, 1000);
    expect(await at(10, 1050)).toBe(950); // 1000 is old enough, but only 50 revisions would be left
    expect(await at(20, 1060)).toBe(960);
    expect(await at(30, 1060)).toBeUndefined(); // idle: 960 is already the limit
    expect(store.calls).toEqual([950, 960]);
  });

  it("does nothing for a young or small store, and never moves backwards", async () => {
    const { store, at } = setup();
    expect(await at(0, 50)).toBeUndefined();
    expect(await at(100, 60)).toBeUndefined(); // fewer than minEvents revisions in all
    store.compacted = 5950; // compacted further by someone else
    await at(101, 6000);
    expect(await at(200, 6000)).toBeUndefined(); // 5900 would be a step back
    expect(store.calls).toEqual([]);
  });

  it("reports errors through onError and recovers on the next tick", async () => {
    const { store, errors, at } = setup();
    await at(0, 1000);
    store.failWith = new UnavailableError("store is closed");
    expect(await at(5, 1100)).toBeUndefined();
    expect(errors.map((e) => e.message)).toEqual(["store is closed"]);
    store.failWith = undefined;
    expect(await at(6, 1200)).toBe(1000);
  });

  it("runs on its timer from start() until stop(); a tick during a tick joins it", async () => {
    let fire: (() => void) | undefined;
    const timers: Timers = {
      setInterval: (fn) => ((fire = fn), "handle"),
      clearInterval: (handle) => {
        expect(handle).toBe("handle");
        fire = undefined;
      },
    };
    const { store, clock, compactor } = setup({ timers, intervalMs: MIN });
    store.revision = 1000;
    compactor.start(); // ticks at once: samples 1000 at minute 0
    compactor.start(); // idempotent
    await compactor.tick(); // joins the tick in progress
    clock.set(5 * MIN);
    store.revision = 2000;
    fire!();
    await compactor.stop();
    expect(fire).toBeUndefined();
    expect(store.calls).toEqual([1000]);
  });
});
