/**
 * Conformance, part 4: compaction keeps the state at R and every event after R, also while
 * writes and watches run during it (etcd's TestWatchNoEventLossOnCompact).
 */
import { describe, expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import { CompactedError, InvalidError } from "../../src/errors.js";
import { del, plain, put, Recorder } from "./conformance-support.js";

export function describeCompact(h: Harness): void {
  describe("compaction", () => {
    it("keeps the state at R and every event after R, with prev versions", async () => {
      const start = await h.store.currentRevision();
      // Keys with several versions, some deleted, before and after R.
      for (let i = 0; i < 60; i++) {
        const key = h.key(`k${i % 7}`);
        if (i % 9 === 8) await del(h.store, key);
        else await put(h.store, key, `v${i}`);
      }
      const r = await h.store.currentRevision();
      for (let i = 60; i < 100; i++) {
        const key = h.key(`k${i % 7}`);
        if (i % 9 === 8) await del(h.store, key);
        else await put(h.store, key, `v${i}`);
      }
      const end = await h.store.currentRevision();
      const everything = new Recorder();
      h.store.watch(h.prefix, start, everything);
      await everything.untilRevision(end);
      const stateAtR = (await h.store.list(h.prefix, { revision: r })).kvs.map(plain);
      const stateNow = (await h.store.list(h.prefix)).kvs.map(plain);

      await h.store.compact(r);
      expect(await h.store.compactRevision()).toBe(r);
      expect((await h.store.list(h.prefix, { revision: r })).kvs.map(plain)).toEqual(stateAtR);
      expect((await h.store.list(h.prefix)).kvs.map(plain)).toEqual(stateNow);
      await expect(h.store.list(h.prefix, { revision: r - 1 })).rejects.toBeInstanceOf(CompactedError);

      const afterR = new Recorder();
      h.store.watch(h.prefix, r, afterR);
      await afterR.untilRevision(end);
      const wanted = everything.summaries.filter((_, i) => everything.events[i]!.kv.modRevision > r);
      expect(wanted.length).toBeGreaterThan(30);
      expect(afterR.summaries).toEqual(wanted);
      afterR.expectClean();
    });

    it("is idempotent, never moves backwards, and refuses a future revision", async () => {
      const r1 = await put(h.store, h.key("a"), "1");
      const r2 = await put(h.store, h.key("a"), "2");
      await h.store.compact(r2);
      await h.store.compact(r2);
      await h.store.compact(r1);
      expect(await h.store.compactRevision()).toBe(r2);
      await expect(h.store.compact(r2 + 100)).rejects.toBeInstanceOf(InvalidError);
      expect(await h.store.compactRevision()).toBe(r2);
      expect(plain(await h.store.get(h.key("a")))?.value).toBe("2");
    });

    it("loses no event for a watch from R while compacting to R under concurrent writes", async () => {
      const keys = Array.from({ length: 30 }, (_, i) => h.key(`k${i}`));
      for (let round = 0; round < 10; round++) {
        await Promise.all(keys.map((k, i) => ((round + i) % 7 === 6 ? del(h.store, k) : put(h.store, k, `r${round}`))));
      }
      const r = await h.store.currentRevision();
      const stateAtR = (await h.store.list(h.prefix, { revision: r })).kvs.map(plain);

      const early = new Recorder();
      h.store.watch(h.prefix, r, early);
      const writes: Promise<number>[] = [];
      for (let i = 0; i < 300; i++) writes.push(i % 11 === 10 ? del(h.store, keys[i % 30]!) : put(h.store, keys[i % 30]!, `w${i}`));
      const compaction = h.store.compact(r);
      const during = new Recorder();
      h.store.watch(h.prefix, r, during);
      const firstHalf = await Promise.all(writes.slice(0, 150));
      const late = new Recorder();
      h.store.watch(h.prefix, r, late);
      await compaction;
      for (let i = 0; i < 100; i++) writes.push(put(h.store, keys[i % 30]!, `x${i}`));
      const revisions = [...new Set([...firstHalf, ...(await Promise.all(writes.slice(150)))])].sort((a, b) => a - b);
      const last = revisions.at(-1)!;
      // A delete of an already deleted key changes nothing: its revision is not an event.
      const changed = revisions.filter((rev) => rev > r);

      for (const rec of [early, during, late]) {
        await rec.untilRevision(last);
        rec.expectClean();
        expect(rec.error).toBeUndefined();
        const seen = rec.events.map((e) => e.kv.modRevision);
        expect(seen).toEqual([...new Set(seen)]);
        expect(seen).toEqual(changed);
      }
      expect(late.summaries).toEqual(early.summaries);
      expect((await h.store.list(h.prefix, { revision: r })).kvs.map(plain)).toEqual(stateAtR);
    });
  });
}
