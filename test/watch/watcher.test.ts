/** Watcher's take/notify/wait: how the server's Watch handler consumes a watcher without holding events. */
import { describe, expect, it, vi } from "vitest";
import { ResourceExhaustedError } from "../../src/errors.js";
import { compileFilter } from "../../src/model/filter.js";
import { type NodeWatchEvent, Watcher } from "../../src/watch/watcher.js";

const event = (name: string, revision: number): NodeWatchEvent => ({ type: "MODIFIED", node: { metadata: { name } } as NodeWatchEvent["node"], revision });

function watcher(queueLimit = 10, onDrained = vi.fn()): Watcher {
  return new Watcher({ filter: compileFilter("", ""), queueLimit, allowBookmarks: false, onEnd: () => {}, onDrained });
}

describe("Watcher.take and wait", () => {
  it("hands out the queued events in order, then undefined", () => {
    const w = watcher();
    w.pushHistory(event("a", 1));
    w.push(event("b", 2));
    w.push(event("c", 3));
    expect([w.take(), w.take(), w.take()].map((e) => e?.revision)).toEqual([1, 2, 3]);
    expect(w.take()).toBeUndefined();
    expect(w.size).toBe(0);
  });

  it("counts taken live events out of the queue limit", () => {
    const w = watcher(2);
    w.push(event("a", 1));
    w.push(event("b", 2));
    expect(w.take()?.revision).toBe(1);
    w.push(event("c", 3));
    expect(w.isEnded).toBe(false);
    w.push(event("d", 4));
    expect(w.isEnded).toBe(true);
    expect(() => w.take()).toThrow(ResourceExhaustedError);
  });

  it("waits until an event is pushed, telling onDrained first that the queue is empty", async () => {
    const onDrained = vi.fn();
    const w = watcher(10, onDrained);
    w.push(event("a", 1));
    await w.wait();
    expect(onDrained).not.toHaveBeenCalled();
    w.take();
    let woke = false;
    const waiting = w.wait().then(() => (woke = true));
    expect(onDrained).toHaveBeenCalledTimes(1);
    await Promise.resolve();
    expect(woke).toBe(false);
    w.push(event("b", 2));
    await waiting;
    expect(w.take()?.revision).toBe(2);
  });

  it("stops waiting when cancelled, with nothing more to take", async () => {
    const w = watcher();
    const waiting = w.wait();
    w.cancel();
    await waiting;
    expect(w.isEnded).toBe(true);
    expect(w.take()).toBeUndefined();
    await w.wait();
  });

  it("throws the failure from take once failed, queued events dropped", async () => {
    const w = watcher();
    w.push(event("a", 1));
    const err = new ResourceExhaustedError("too slow");
    w.fail(err);
    await w.wait();
    expect(() => w.take()).toThrow(err);
  });

  it("keeps the order through bursts, partial takes and an emptied queue", () => {
    const w = watcher(100_000);
    let pushed = 0;
    let taken = 0;
    for (const [push, take] of [[3000, 2500], [10, 510], [1, 1], [2000, 1500], [5, 505]] as const) {
      for (let i = 0; i < push; i++) w.push(event("n", ++pushed));
      for (let i = 0; i < take; i++) expect(w.take()?.revision).toBe(++taken);
      expect(w.size).toBe(pushed - taken);
    }
    expect(w.take()).toBeUndefined();
  });
});

describe("Watcher.notify and notifyEnd", () => {
  it("calls back once, from a microtask, when the next event arrives; false while events wait", async () => {
    const onDrained = vi.fn();
    const w = watcher(10, onDrained);
    w.push(event("a", 1));
    const ready = vi.fn();
    expect(w.notify(ready)).toBe(false);
    expect(onDrained).not.toHaveBeenCalled();
    w.take();
    expect(w.notify(ready)).toBe(true);
    expect(onDrained).toHaveBeenCalledTimes(1);
    w.push(event("b", 2));
    w.push(event("c", 3));
    expect(ready).not.toHaveBeenCalled();
    await Promise.resolve();
    expect(ready).toHaveBeenCalledTimes(1);
    w.push(event("d", 4));
    await Promise.resolve();
    expect(ready).toHaveBeenCalledTimes(1);
  });

  it("calls back when the watcher ends while it waits", async () => {
    const w = watcher();
    const ready = vi.fn();
    expect(w.notify(ready)).toBe(true);
    w.cancel();
    await Promise.resolve();
    expect(ready).toHaveBeenCalledTimes(1);
    expect(w.notify(ready)).toBe(false);
  });

  it("notifyEnd is not called for events, only once the watcher ends (at once if it has)", async () => {
    const w = watcher(1);
    const ready = vi.fn();
    w.notifyEnd(ready);
    w.push(event("a", 1));
    await Promise.resolve();
    expect(ready).not.toHaveBeenCalled();
    w.push(event("b", 2)); // over the limit of 1: the watcher fails
    await Promise.resolve();
    expect(ready).toHaveBeenCalledTimes(1);
    const late = vi.fn();
    w.notifyEnd(late);
    await Promise.resolve();
    expect(late).toHaveBeenCalledTimes(1);
    expect(() => w.take()).toThrow(ResourceExhaustedError);
  });

  it("a later notify replaces the callback", async () => {
    const w = watcher();
    const first = vi.fn();
    const second = vi.fn();
    w.notifyEnd(first);
    expect(w.notify(second)).toBe(true);
    w.push(event("a", 1));
    await Promise.resolve();
    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledTimes(1);
  });
});
