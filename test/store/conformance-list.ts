/**
 * Conformance, part 2: list — order, prefix isolation, paging, reads at older revisions.
 */
import { describe, expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import { CompactedError, InvalidError } from "../../src/errors.js";
import type { ListOptions, Store } from "../../src/store/store.js";
import { del, plain, put, text } from "./conformance-support.js";

/** Every page of a list, following startAfter; returns keys and each page's `more`. */
async function pages(store: Store, prefix: string, opts: ListOptions): Promise<{ keys: string[][]; more: boolean[] }> {
  const keys: string[][] = [];
  const more: boolean[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list(prefix, { ...opts, startAfter });
    keys.push(page.kvs.map((kv) => kv.key));
    more.push(page.more);
    if (!page.more) return { keys, more };
    startAfter = page.kvs.at(-1)!.key;
  }
}

export function describeList(h: Harness): void {
  describe("list", () => {
    it("lists only the keys under a prefix, in byte order, at the current revision", async () => {
      const inside = ["nodes/b", "nodes/a", "nodes/B", "nodes/a0", "nodes/a/x", "nodes/z", "nodes/é", "nodes/\u{1F600}", "nodes/\uFFFD"];
      const outside = ["nodes-x/a", "nodes", "nodesa/b", "node/a", "nodes-/"];
      for (const name of [...inside, ...outside]) await put(h.store, h.key(name), name);
      const res = await h.store.list(h.key("nodes/"));
      // Byte order of UTF-8 (not JavaScript's UTF-16 order: U+1F600 sorts after U+FFFD).
      const want = inside.map(h.key.bind(h)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      expect(res.kvs.map((kv) => kv.key)).toEqual(want);
      expect(res.kvs.map((kv) => text(kv.value))).toEqual(want.map((k) => k.slice(h.prefix.length)));
      expect(res.more).toBe(false);
      expect(res.revision).toBe(await h.store.currentRevision());
      expect((await h.store.list(h.key("nodes-x/"))).kvs.map((kv) => kv.key)).toEqual([h.key("nodes-x/a")]);
      expect((await h.store.list(h.key("empty/"))).kvs).toEqual([]);
    });

    it("pages with startAfter and limit, reporting more exactly", async () => {
      const names = ["k0", "k1", "k2", "k3", "k4"].map((n) => h.key(`p/${n}`));
      for (const k of names) await put(h.store, k, "v");
      await put(h.store, h.key("q/after"), "v"); // a key past the prefix must not make `more` true

      expect(await pages(h.store, h.key("p/"), { limit: 2 })).toEqual({
        keys: [names.slice(0, 2), names.slice(2, 4), names.slice(4)],
        more: [true, true, false],
      });
      expect(await pages(h.store, h.key("p/"), { limit: 5 })).toEqual({ keys: [names], more: [false] });
      expect(await pages(h.store, h.key("p/"), { limit: 0 })).toEqual({ keys: [names], more: [false] });

      // startAfter need not be a key; one before the prefix starts at the beginning.
      const mid = await h.store.list(h.key("p/"), { startAfter: h.key("p/k1x"), limit: 2 });
      expect(mid.kvs.map((kv) => kv.key)).toEqual(names.slice(2, 4));
      expect(mid.more).toBe(true);
      expect((await h.store.list(h.key("p/"), { startAfter: h.key("a") })).kvs.map((kv) => kv.key)).toEqual(names);
      expect((await h.store.list(h.key("p/"), { startAfter: names[4] })).kvs).toEqual([]);
    });

    it("a list at an older revision sees that revision's state, paged consistently", async () => {
      const r1 = await put(h.store, h.key("s/a"), "a1");
      const rb = await put(h.store, h.key("s/b"), "b1");
      const rc = await put(h.store, h.key("s/c"), "c1");
      await put(h.store, h.key("s/c"), "c2");
      const at = await h.store.currentRevision();
      const headAtThen = await h.store.list(h.key("s/"));

      const ra2 = await put(h.store, h.key("s/a"), "a2");
      await del(h.store, h.key("s/b"));
      await put(h.store, h.key("s/d"), "d1");
      await del(h.store, h.key("s/c"));
      await put(h.store, h.key("s/c"), "c3"); // re-created since

      const past = await h.store.list(h.key("s/"), { revision: at });
      expect(past.revision).toBe(at);
      expect(past.more).toBe(false);
      expect(past.kvs.map(plain)).toEqual(headAtThen.kvs.map(plain));
      expect(past.kvs.map((kv) => `${kv.key.slice(h.prefix.length)}=${text(kv.value)}@${kv.createRevision}`)).toEqual([
        `s/a=a1@${r1}`,
        `s/b=b1@${rb}`,
        `s/c=c2@${rc}`,
      ]);
      expect(await pages(h.store, h.key("s/"), { revision: at, limit: 1 })).toEqual({
        keys: [[h.key("s/a")], [h.key("s/b")], [h.key("s/c")]],
        more: [true, true, false],
      });

      const now = await h.store.list(h.key("s/"));
      expect(now.kvs.map((kv) => `${kv.key.slice(h.prefix.length)}=${text(kv.value)}`)).toEqual(["s/a=a2", "s/c=c3", "s/d=d1"]);
      expect(now.kvs[0]!.modRevision).toBe(ra2);
      // Revision 0 means "current", as in etcd.
      expect((await h.store.list(h.key("s/"), { revision: 0 })).revision).toBe(now.revision);
    });

    it("a list at an older revision merges keys unchanged since with keys changed, deleted or created since, in byte order, paged at every size", async () => {
      // Names around U+FFFF (UTF-8 order puts U+1F600 after U+FFFD, unlike JS's UTF-16 order).
      const names = ["a", "b", "c", "d", "e", "f", "é", "\uFFFD", "\u{1F600}", "\u{1F601}"];
      for (const n of names) await put(h.store, h.key(`m/${n}`), `${n}1`);
      await del(h.store, h.key("m/f"));
      const at = await h.store.currentRevision();
      const thenKvs = (await h.store.list(h.key("m/"))).kvs;
      const then = thenKvs.map(plain);
      // Since: updated, deleted, deleted and re-created, created, updated twice — some below,
      // some between and some above the keys left alone.
      await put(h.store, h.key("m/b"), "b2");
      await del(h.store, h.key("m/c"));
      await del(h.store, h.key("m/é"));
      await put(h.store, h.key("m/é"), "é2");
      await put(h.store, h.key("m/0"), "new");
      await put(h.store, h.key("m/f"), "f2");
      await put(h.store, h.key("m/\u{1F601}"), "y2");
      await put(h.store, h.key("m/\u{1F601}"), "y3");
      await del(h.store, h.key("m/\uFFFD")); // before U+1F600 (unchanged) in byte order, after it in UTF-16's
      await put(h.store, h.key("m/zz"), "new");

      const past = await h.store.list(h.key("m/"), { revision: at });
      expect(past.kvs.map(plain)).toEqual(then);
      expect(thenKvs.map((kv) => kv.key)).toEqual(
        names.filter((n) => n !== "f").map((n) => h.key(`m/${n}`)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
      );
      for (const limit of [1, 2, 3, 4]) {
        const paged = await pages(h.store, h.key("m/"), { revision: at, limit });
        expect(paged.keys.flat()).toEqual(thenKvs.map((kv) => kv.key));
        expect(paged.keys.every((page) => page.length === limit || page === paged.keys.at(-1))).toBe(true);
      }
      // Starting between keys, also past the last one changed since.
      const tail = await h.store.list(h.key("m/"), { revision: at, startAfter: h.key("m/c") });
      expect(tail.kvs.map(plain)).toEqual(thenKvs.filter((kv) => Buffer.compare(Buffer.from(kv.key), Buffer.from(h.key("m/c"))) > 0).map(plain));
    });

    it("a list at an older revision skips any number of keys created since between the keys it holds", async () => {
      await put(h.store, h.key("c/a"), "a");
      await put(h.store, h.key("c/z"), "z");
      const at = await h.store.currentRevision();
      for (let i = 0; i < 200; i++) await put(h.store, h.key(`c/m${String(i).padStart(3, "0")}`), "new");
      await put(h.store, h.key("c/z"), "z2");
      expect(await pages(h.store, h.key("c/"), { revision: at, limit: 1 })).toEqual({ keys: [[h.key("c/a")], [h.key("c/z")]], more: [true, false] });
      const all = await h.store.list(h.key("c/"), { revision: at });
      expect(all.kvs.map((kv) => `${kv.key.slice(h.prefix.length)}=${text(kv.value)}`)).toEqual(["c/a=a", "c/z=z"]);
    });

    it("a list at a compacted revision fails with CompactedError; at the compact revision it works", async () => {
      const r1 = await put(h.store, h.key("a"), "v1");
      const r2 = await put(h.store, h.key("a"), "v2");
      await put(h.store, h.key("a"), "v3");
      await h.store.compact(r2);
      const err = await h.store.list(h.prefix, { revision: r1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CompactedError);
      expect((err as CompactedError).requested).toBe(r1);
      expect((err as CompactedError).oldest).toBe(r2);
      const at = await h.store.list(h.prefix, { revision: r2 });
      expect(at.kvs.map((kv) => text(kv.value))).toEqual(["v2"]);
    });

    it("a list at a future revision fails with InvalidError naming it", async () => {
      const future = (await h.store.currentRevision()) + 10;
      const err = await h.store.list(h.prefix, { revision: future }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidError);
      expect((err as Error).message).toContain(String(future));
    });
  });
}
