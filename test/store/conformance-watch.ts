/**
 * Conformance, part 3: watch — history then live, exactly once and in order, prev versions,
 * progress, cancellation, and the end of a watch from a compacted revision.
 */
import { describe, expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import { CompactedError } from "../../src/errors.js";
import { bytes, del, put, Recorder } from "./conformance-support.js";

export function describeWatch(h: Harness): void {
  describe("watch", () => {
    it("delivers history, then live changes, in order, exactly once, with prev versions", async () => {
      const [a, b, c] = [h.key("w/a"), h.key("w/b"), h.key("w/c")];
      const start = await h.store.currentRevision();
      const r1 = await put(h.store, a, "a1");
      const r2 = await put(h.store, a, "a2");
      const r3 = await put(h.store, b, "b1");
      const r4 = await del(h.store, a);
      await put(h.store, h.key("x/outside"), "x");

      const rec = new Recorder();
      const watch = h.store.watch(h.key("w/"), start, rec);
      await rec.untilRevision(r4);
      const r5 = await put(h.store, b, "b2");
      const multi = await h.store.txn({
        compare: [],
        ops: [
          { type: "put", key: c, value: bytes("c1") },
          { type: "delete", key: b },
        ],
      });
      const r6 = multi.revision;
      await rec.untilRevision(r6);
      watch.cancel();

      expect(rec.summaries).toEqual([
        `put ${a}=a1@${r1}`,
        `put ${a}=a2@${r2} prev=a1@${r1}`,
        `put ${b}=b1@${r3}`,
        `delete ${a}@${r4} prev=a2@${r2}`,
        `put ${b}=b2@${r5} prev=b1@${r3}`,
        `put ${c}=c1@${r6}`,
        `delete ${b}@${r6} prev=b2@${r5}`,
      ]);
      const deletion = rec.events[3]!;
      expect(deletion.kv.value.length).toBe(0);
      expect(deletion.prev!.createRevision).toBe(r1);
      expect(rec.events[1]!.kv.createRevision).toBe(r1);
      expect(rec.error).toBeUndefined();
      rec.expectClean();
    });

    it("starts after the given revision", async () => {
      await put(h.store, h.key("a"), "1");
      const from = await put(h.store, h.key("a"), "2");
      const r3 = await put(h.store, h.key("a"), "3");
      const rec = new Recorder();
      h.store.watch(h.prefix, from, rec);
      await rec.untilRevision(r3);
      expect(rec.summaries).toEqual([`put ${h.key("a")}=3@${r3} prev=2@${from}`]);
      rec.expectClean();
    });

    it("delivers every change exactly once when writes race the watch's start", async () => {
      const start = await h.store.currentRevision();
      const write = (i: number) => put(h.store, h.key(`k${i % 20}`), `v${i}`);
      const before = Promise.all(Array.from({ length: 100 }, (_, i) => write(i)));
      const rec = new Recorder();
      h.store.watch(h.prefix, start, rec);
      const after = Promise.all(Array.from({ length: 100 }, (_, i) => write(100 + i)));
      const revisions = [...(await before), ...(await after)].sort((x, y) => x - y);
      await rec.untilRevision(revisions.at(-1)!);
      expect(rec.events.map((e) => e.kv.modRevision)).toEqual(revisions);
      expect(new Set(revisions).size).toBe(200);
      rec.expectClean();
    });

    it("sees nothing of sibling prefixes, and reports progress past them", async () => {
      const rec = new Recorder();
      h.store.watch(h.key("a/"), await h.store.currentRevision(), rec);
      await put(h.store, h.key("a-x/k"), "v");
      const r = await put(h.store, h.key("b/k"), "v");
      await rec.untilRevision(r);
      expect(rec.events).toEqual([]);
      expect(rec.progress.at(-1)).toBeGreaterThanOrEqual(r);
      rec.expectClean();
    });

    it("never calls a listener from inside the caller's watch() or txn()", async () => {
      const rec = new Recorder();
      const start = await put(h.store, h.key("a"), "0");
      rec.forbidden = true;
      h.store.watch(h.prefix, start - 1, rec);
      const pending = put(h.store, h.key("a"), "1");
      rec.forbidden = false;
      await rec.untilRevision(await pending);
      expect(rec.events.length).toBe(2);
      rec.expectClean();
    });

    it("cancel stops delivery", async () => {
      const cancelled = new Recorder();
      const control = new Recorder();
      const start = await h.store.currentRevision();
      const watch = h.store.watch(h.prefix, start, cancelled);
      h.store.watch(h.prefix, start, control);
      const r1 = await put(h.store, h.key("a"), "1");
      await cancelled.untilRevision(r1);
      watch.cancel();
      watch.cancel(); // idempotent
      const r2 = await put(h.store, h.key("a"), "2");
      await control.untilRevision(r2);
      expect(cancelled.events.map((e) => e.kv.modRevision)).toEqual([r1]);
      expect(cancelled.reached).toBeLessThan(r2);
      expect(cancelled.error).toBeUndefined();
    });

    it("overlapping prefixes each get exactly their keys", async () => {
      const prefixes = ["", "a/", "a/b/", "a/b/c/", "z/"].map((p) => h.key(p));
      const start = await h.store.currentRevision();
      const recs = prefixes.map((p) => {
        const rec = new Recorder();
        h.store.watch(p, start, rec);
        return rec;
      });
      const keys = ["a/1", "a/b/1", "a/b/c/1", "a/bc", "z/1", "y"].map((k) => h.key(k));
      let last = 0;
      for (const k of keys) last = await put(h.store, k, "v");
      for (const [i, rec] of recs.entries()) {
        await rec.untilRevision(last);
        expect(rec.events.map((e) => e.kv.key)).toEqual(keys.filter((k) => k.startsWith(prefixes[i]!)));
        rec.expectClean();
      }
    });

    it("a watch from a future revision delivers only the changes after it", async () => {
      const now = await h.store.currentRevision();
      const rec = new Recorder();
      h.store.watch(h.prefix, now + 2, rec);
      const revisions: number[] = [];
      for (let i = 0; i < 3; i++) revisions.push(await put(h.store, h.key("a"), String(i)));
      await rec.untilRevision(revisions.at(-1)!);
      expect(rec.events.map((e) => e.kv.modRevision)).toEqual(revisions.filter((r) => r > now + 2));
      rec.expectClean();
    });

    it("a watch from a compacted revision ends with CompactedError naming the oldest revision", async () => {
      const r1 = await put(h.store, h.key("a"), "1");
      const r2 = await put(h.store, h.key("a"), "2");
      await h.store.compact(r2);
      const rec = new Recorder();
      h.store.watch(h.prefix, r1 - 1, rec);
      const err = await rec.ended();
      expect(err).toBeInstanceOf(CompactedError);
      expect((err as CompactedError).requested).toBe(r1 - 1);
      expect((err as CompactedError).oldest).toBe(await h.store.compactRevision());
      expect(err.message).toContain(String(r2));
      expect(rec.events).toEqual([]);
      rec.expectClean();
    });
  });
}
