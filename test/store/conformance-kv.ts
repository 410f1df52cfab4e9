/**
 * Conformance, part 1: get, put, compare-and-swap transactions and revisions.
 */
import { describe, expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import { InvalidError } from "../../src/errors.js";
import { bytes, del, plain, put, text } from "./conformance-support.js";

export function describeTxn(h: Harness): void {
  describe("get and txn", () => {
    it("get of an absent key is undefined", async () => {
      expect(await h.store.get(h.key("absent"))).toBeUndefined();
    });

    it("a put creates a key whose create and mod revisions are the txn's revision", async () => {
      const before = await h.store.currentRevision();
      const res = await h.store.txn({ compare: [], ops: [{ type: "put", key: h.key("a"), value: bytes("v1") }] });
      expect(res.succeeded).toBe(true);
      expect(res.revision).toBeGreaterThan(before);
      const want = { key: h.key("a"), value: "v1", createRevision: res.revision, modRevision: res.revision };
      expect(res.succeeded && res.results.map(plain)).toEqual([want]);
      expect(plain(await h.store.get(h.key("a")))).toEqual(want);
      expect(await h.store.currentRevision()).toBe(res.revision);
    });

    it("values round-trip byte for byte, empty ones included", async () => {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      await h.store.txn({
        compare: [],
        ops: [
          { type: "put", key: h.key("all"), value: all },
          { type: "put", key: h.key("empty"), value: new Uint8Array(0) },
        ],
      });
      expect(Array.from((await h.store.get(h.key("all")))!.value)).toEqual(Array.from(all));
      expect((await h.store.get(h.key("empty")))!.value.length).toBe(0);
    });

    it("create-if-absent (compare modRevision 0) succeeds once, then fails returning the current version", async () => {
      const create = (v: string) =>
        h.store.txn({ compare: [{ key: h.key("a"), modRevision: 0 }], ops: [{ type: "put", key: h.key("a"), value: bytes(v) }] });
      const first = await create("v1");
      expect(first.succeeded).toBe(true);
      const second = await create("v2");
      expect(second.succeeded).toBe(false);
      expect(second.revision).toBe(first.revision);
      expect(!second.succeeded && second.current.map(plain)).toEqual([
        { key: h.key("a"), value: "v1", createRevision: first.revision, modRevision: first.revision },
      ]);
      expect(text((await h.store.get(h.key("a")))!.value)).toBe("v1");
    });

    it("update-if-revision succeeds at the current modRevision and fails at a stale one", async () => {
      const r1 = await put(h.store, h.key("a"), "v1");
      const update = (at: number, v: string) =>
        h.store.txn({ compare: [{ key: h.key("a"), modRevision: at }], ops: [{ type: "put", key: h.key("a"), value: bytes(v) }] });
      const ok = await update(r1, "v2");
      expect(ok.succeeded).toBe(true);
      expect(ok.revision).toBeGreaterThan(r1);
      expect(ok.succeeded && plain(ok.results[0])).toEqual({ key: h.key("a"), value: "v2", createRevision: r1, modRevision: ok.revision });
      const stale = await update(r1, "v3");
      expect(stale.succeeded).toBe(false);
      expect(stale.revision).toBe(ok.revision);
      expect(!stale.succeeded && plain(stale.current[0])).toEqual({ key: h.key("a"), value: "v2", createRevision: r1, modRevision: ok.revision });
      expect(text((await h.store.get(h.key("a")))!.value)).toBe("v2");
    });

    it("a compare on an absent key with a non-zero revision fails with current undefined", async () => {
      const r = await put(h.store, h.key("other"), "x");
      const res = await h.store.txn({ compare: [{ key: h.key("a"), modRevision: r }], ops: [{ type: "put", key: h.key("a"), value: bytes("v") }] });
      expect(res).toEqual({ succeeded: false, revision: r, current: [undefined] });
      expect(await h.store.get(h.key("a"))).toBeUndefined();
    });

    it("delete returns the deleted version; deleting an absent key changes nothing", async () => {
      const r1 = await put(h.store, h.key("a"), "v1");
      const res = await h.store.txn({ compare: [], ops: [{ type: "delete", key: h.key("a") }] });
      expect(res.succeeded).toBe(true);
      expect(res.revision).toBeGreaterThan(r1);
      expect(res.succeeded && res.results.map(plain)).toEqual([{ key: h.key("a"), value: "v1", createRevision: r1, modRevision: r1 }]);
      expect(await h.store.get(h.key("a"))).toBeUndefined();
      const again = await h.store.txn({ compare: [], ops: [{ type: "delete", key: h.key("a") }] });
      expect(again).toEqual({ succeeded: true, revision: res.revision, results: [undefined] });
      expect(await h.store.currentRevision()).toBe(res.revision);
    });

    it("delete-if-revision fails on a stale revision and leaves the key, succeeds on the current one", async () => {
      const r1 = await put(h.store, h.key("a"), "v1");
      const r2 = await put(h.store, h.key("a"), "v2");
      const deleteAt = (at: number) =>
        h.store.txn({ compare: [{ key: h.key("a"), modRevision: at }], ops: [{ type: "delete", key: h.key("a") }] });
      const stale = await deleteAt(r1);
      expect(stale.succeeded).toBe(false);
      expect(!stale.succeeded && stale.current[0]?.modRevision).toBe(r2);
      expect(await h.store.get(h.key("a"))).toBeDefined();
      const ok = await deleteAt(r2);
      expect(ok.succeeded).toBe(true);
      expect(await h.store.get(h.key("a"))).toBeUndefined();
    });

    it("a multi-op txn applies all its ops at one revision, or none of them", async () => {
      const rc = await put(h.store, h.key("c"), "c1");
      const res = await h.store.txn({
        compare: [{ key: h.key("c"), modRevision: rc }],
        ops: [
          { type: "put", key: h.key("a"), value: bytes("a1") },
          { type: "put", key: h.key("b"), value: bytes("b1") },
          { type: "delete", key: h.key("c") },
        ],
      });
      expect(res.succeeded).toBe(true);
      const rev = res.revision;
      expect(rev).toBeGreaterThan(rc);
      expect(res.succeeded && res.results.map((kv) => kv?.modRevision)).toEqual([rev, rev, rc]);
      expect((await h.store.list(h.prefix)).kvs.map((kv) => [kv.key, kv.modRevision])).toEqual([
        [h.key("a"), rev],
        [h.key("b"), rev],
      ]);

      // One of two compares fails: nothing applies, and both current versions come back in compare order.
      const failed = await h.store.txn({
        compare: [
          { key: h.key("b"), modRevision: rev },
          { key: h.key("a"), modRevision: rc },
        ],
        ops: [
          { type: "put", key: h.key("d"), value: bytes("d1") },
          { type: "delete", key: h.key("a") },
        ],
      });
      expect(failed.succeeded).toBe(false);
      expect(!failed.succeeded && failed.current.map((kv) => kv?.key)).toEqual([h.key("b"), h.key("a")]);
      expect(await h.store.get(h.key("d"))).toBeUndefined();
      expect(await h.store.get(h.key("a"))).toBeDefined();
      expect(await h.store.currentRevision()).toBe(rev);
    });

    it("a txn that changes nothing does not advance the revision", async () => {
      const r = await put(h.store, h.key("a"), "v1");
      const noOps = await h.store.txn({ compare: [{ key: h.key("a"), modRevision: r }], ops: [] });
      expect(noOps).toEqual({ succeeded: true, revision: r, results: [] });
      const failed = await h.store.txn({ compare: [{ key: h.key("a"), modRevision: 0 }], ops: [{ type: "put", key: h.key("a"), value: bytes("x") }] });
      expect(failed.revision).toBe(r);
      const absent = await h.store.txn({ compare: [], ops: [{ type: "delete", key: h.key("absent") }] });
      expect(absent.revision).toBe(r);
      expect(await h.store.currentRevision()).toBe(r);
      expect(await put(h.store, h.key("b"), "v1")).toBeGreaterThan(r);
    });

    it("revisions strictly increase, and each change's modRevision is its txn's revision", async () => {
      let last = await h.store.currentRevision();
      for (let i = 0; i < 20; i++) {
        const key = h.key(`k${i % 3}`);
        const rev = i % 5 === 4 ? await del(h.store, key) : await put(h.store, key, `v${i}`);
        expect(rev).toBeGreaterThan(last);
        if (i % 5 !== 4) expect((await h.store.get(key))!.modRevision).toBe(rev);
        last = rev;
      }
      expect(await h.store.currentRevision()).toBe(last);
    });

    it("a key created again after a delete gets a new createRevision", async () => {
      const r1 = await put(h.store, h.key("a"), "v1");
      await del(h.store, h.key("a"));
      const r3 = await put(h.store, h.key("a"), "v2");
      expect(r3).toBeGreaterThan(r1);
      expect(plain(await h.store.get(h.key("a")))).toEqual({ key: h.key("a"), value: "v2", createRevision: r3, modRevision: r3 });
    });

    it("a txn that changes one key twice is refused with InvalidError", async () => {
      const twice = [
        [
          { type: "put", key: h.key("a"), value: bytes("1") },
          { type: "put", key: h.key("a"), value: bytes("2") },
        ],
        [
          { type: "put", key: h.key("a"), value: bytes("1") },
          { type: "delete", key: h.key("a") },
        ],
      ] as const;
      for (const ops of twice) {
        await expect(h.store.txn({ compare: [], ops: [...ops] })).rejects.toBeInstanceOf(InvalidError);
      }
      expect(await h.store.get(h.key("a"))).toBeUndefined();
    });
  });
}
