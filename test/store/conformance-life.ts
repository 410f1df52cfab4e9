/**
 * Conformance, part 5: many concurrent callers (group commit), restart, and close.
 */
import { describe, expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import { UnavailableError } from "../../src/errors.js";
import type { Store } from "../../src/store/store.js";
import { bytes, plain, put, Recorder, text } from "./conformance-support.js";

/** Add one to a counter key with compare-and-swap, retrying from the version a failure returns. */
async function increment(store: Store, key: string): Promise<{ revision: number; attempts: number }> {
  let current = await store.get(key);
  for (let attempts = 1; ; attempts++) {
    const next = String(Number(current ? text(current.value) : "0") + 1);
    const res = await store.txn({
      compare: [{ key, modRevision: current?.modRevision ?? 0 }],
      ops: [{ type: "put", key, value: bytes(next) }],
    });
    if (res.succeeded) return { revision: res.revision, attempts };
    current = res.current[0];
  }
}

export function describeLife(h: Harness): void {
  describe("concurrency", () => {
    it("2,000 concurrent creates and conditional updates of distinct keys all commit at distinct revisions", async () => {
      const keys = Array.from({ length: 2000 }, (_, i) => h.key(`n/${String(i).padStart(4, "0")}`));
      const created = await Promise.all(
        keys.map((key) => h.store.txn({ compare: [{ key, modRevision: 0 }], ops: [{ type: "put", key, value: bytes("0") }] })),
      );
      expect(created.every((r) => r.succeeded)).toBe(true);
      expect(new Set(created.map((r) => r.revision)).size).toBe(2000);

      const updated = await Promise.all(
        keys.map((key, i) =>
          h.store.txn({ compare: [{ key, modRevision: created[i]!.revision }], ops: [{ type: "put", key, value: bytes("1") }] }),
        ),
      );
      expect(updated.every((r) => r.succeeded)).toBe(true);
      const revisions = updated.map((r) => r.revision);
      expect(new Set(revisions).size).toBe(2000);
      expect(Math.min(...revisions)).toBeGreaterThan(Math.max(...created.map((r) => r.revision)));

      const list = await h.store.list(h.key("n/"));
      expect(list.kvs.length).toBe(2000);
      expect(list.kvs.map((kv) => [text(kv.value), kv.modRevision, kv.createRevision])).toEqual(
        keys.map((_, i) => ["1", updated[i]!.revision, created[i]!.revision]),
      );
      expect(list.revision).toBe(Math.max(...revisions));
    });

    it("concurrent compare-and-swap increments of one key lose no update", async () => {
      const key = h.key("counter");
      const results = await Promise.all(Array.from({ length: 100 }, () => increment(h.store, key)));
      expect(text((await h.store.get(key))!.value)).toBe("100");
      expect(new Set(results.map((r) => r.revision)).size).toBe(100);
      // Contention really happened: most callers had to retry.
      expect(results.filter((r) => r.attempts > 1).length).toBeGreaterThan(0);
    });

    it("a write is visible to get, list and watch once its promise resolves", async () => {
      const rec = new Recorder();
      h.store.watch(h.prefix, await h.store.currentRevision(), rec);
      const writes = await Promise.all(Array.from({ length: 50 }, (_, i) => put(h.store, h.key(`k${i}`), `v${i}`)));
      expect(text((await h.store.get(h.key("k49")))!.value)).toBe("v49");
      expect((await h.store.list(h.prefix)).kvs.length).toBe(50);
      await rec.untilRevision(Math.max(...writes));
      expect(rec.events.length).toBe(50);
    });
  });

  describe("restart and close", () => {
    it.skipIf(!h.canReopen)("reopen keeps data and revisions, and a watch from an old revision gets every later event", async () => {
      const start = await h.store.currentRevision();
      const revs: number[] = [];
      for (let i = 0; i < 10; i++) revs.push(await put(h.store, h.key(`k${i % 3}`), `v${i}`));
      const reference = new Recorder();
      h.store.watch(h.prefix, start, reference);
      await reference.untilRevision(revs.at(-1)!);
      const r = revs[4]!;
      await h.store.compact(r);
      const before = {
        data: (await h.store.list(h.prefix)).kvs.map(plain),
        atR: (await h.store.list(h.prefix, { revision: r })).kvs.map(plain),
        current: await h.store.currentRevision(),
        compacted: await h.store.compactRevision(),
      };

      const store = await h.reopen();
      expect({
        data: (await store.list(h.prefix)).kvs.map(plain),
        atR: (await store.list(h.prefix, { revision: r })).kvs.map(plain),
        current: await store.currentRevision(),
        compacted: await store.compactRevision(),
      }).toEqual(before);
      expect(await reference.ended()).toBeInstanceOf(UnavailableError);

      const rec = new Recorder();
      store.watch(h.prefix, r, rec);
      const next = await put(store, h.key("k0"), "after");
      expect(next).toBeGreaterThan(before.current);
      await rec.untilRevision(next);
      const old = reference.summaries.filter((_, i) => reference.events[i]!.kv.modRevision > r);
      expect(rec.summaries).toEqual([...old, `put ${h.key("k0")}=after@${next} prev=v9@${revs[9]}`]);
      rec.expectClean();
    });

    it("close lets queued writes finish", async () => {
      const writes = Array.from({ length: 100 }, (_, i) => put(h.store, h.key(`k${i}`), "v"));
      const closed = h.store.close();
      const revisions = await Promise.all(writes);
      await closed;
      expect(new Set(revisions).size).toBe(100);
      if (!h.canReopen) return;
      const store = await h.reopen();
      expect((await store.list(h.prefix)).kvs.length).toBe(100);
    });

    it("close ends watches with UnavailableError, and later calls fail with UnavailableError", async () => {
      const start = await h.store.currentRevision();
      await put(h.store, h.key("a"), "1");
      const live = new Recorder();
      h.store.watch(h.prefix, await h.store.currentRevision(), live);
      const history = new Recorder();
      h.store.watch(h.prefix, start, history);
      await h.store.ping();
      await h.store.close();
      expect(await live.ended()).toBeInstanceOf(UnavailableError);
      expect(await history.ended()).toBeInstanceOf(UnavailableError);
      live.expectClean();
      history.expectClean();

      const calls: [string, () => Promise<unknown>][] = [
        ["get", () => h.store.get(h.key("a"))],
        ["list", () => h.store.list(h.prefix)],
        ["txn", () => put(h.store, h.key("b"), "1")],
        ["compact", () => h.store.compact(0)],
        ["currentRevision", () => h.store.currentRevision()],
        ["compactRevision", () => h.store.compactRevision()],
        ["ping", () => h.store.ping()],
      ];
      for (const [name, call] of calls) {
        const err = await call().then(
          () => new Error(`${name} succeeded after close`),
          (e: unknown) => e,
        );
        expect(err, name).toBeInstanceOf(UnavailableError);
      }
      const late = new Recorder();
      h.store.watch(h.prefix, start, late);
      expect(await late.ended()).toBeInstanceOf(UnavailableError);
      await h.store.close(); // idempotent
    });
  });
}
