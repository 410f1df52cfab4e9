/**
 * Resuming watches from memory: the window of recent changes (what it holds, when it answers),
 * and the watch cache serving resumes from it — or, for a pinned watcher whose node has not
 * changed, from nothing at all — without a replay of store history, with exactly the events the
 * store's replay gives.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { encodeNode } from "../../src/model/codec.js";
import { compileFilter } from "../../src/model/filter.js";
import { nodeKey } from "../../src/model/keys.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import type { Change } from "../../src/watch/catchup.js";
import { RecentChanges } from "../../src/watch/recent.js";
import type { NodeWatchEvent, Watcher } from "../../src/watch/watcher.js";
import { NodeCache } from "../support/node-cache.js";

const change = (revision: number, name = `n${revision}`): Change => ({ revision, name, node: undefined, prev: undefined });
const revs = (cs: Change[] | undefined): number[] | undefined => cs?.map((c) => c.revision);

describe("RecentChanges", () => {
  it("answers nothing before it is reset, then every change above a revision at or over its floor", () => {
    const r = new RecentChanges(10);
    r.add(change(5));
    expect(r.since(0)).toBeUndefined();
    r.reset(10);
    // Not history: at or below the floor (a relist's differences).
    r.add(change(9));
    r.add(change(10));
    for (const rev of [11, 12, 15]) r.add(change(rev));
    expect(revs(r.since(10))).toEqual([11, 12, 15]);
    expect(revs(r.since(12))).toEqual([15]);
    expect(revs(r.since(13))).toEqual([15]);
    expect(revs(r.since(15))).toEqual([]);
    expect(r.since(9)).toBeUndefined();
  });

  it("drops the oldest revision whole when full, raising its floor", () => {
    const r = new RecentChanges(3);
    r.reset(0);
    r.add(change(1, "a"));
    r.add(change(1, "b"));
    r.add(change(2));
    r.add(change(3));
    // Four held, three allowed: both changes of revision 1 go.
    expect(r.since(0)).toBeUndefined();
    expect(revs(r.since(1))).toEqual([2, 3]);
    for (let rev = 4; rev < 3000; rev++) r.add(change(rev));
    expect(revs(r.since(2996))).toEqual([2997, 2998, 2999]);
    expect(r.since(2995)).toBeUndefined();
  });

  it("holds nothing with a capacity of 0", () => {
    const r = new RecentChanges(0);
    r.reset(0);
    r.add(change(1));
    expect(r.since(0)).toBeUndefined();
  });
});

describe("WatchCache resuming from memory", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  /** A store that counts the history replays asked of it: watches from below the cache's revision (the informer's own starts at it). */
  async function setup(historySize?: number): Promise<{ store: SqliteStore; cache: NodeCache; replays: () => number }> {
    const dir = mkdtempSync(join(tmpdir(), "nodeplane-recent-"));
    const store = await SqliteStore.open({ dir });
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }), () => store.close());
    let replays = 0;
    let cache: NodeCache | undefined;
    const counted: Store = new Proxy(store, {
      get(target, prop) {
        if (prop === "watch") {
          return (...args: Parameters<Store["watch"]>) => {
            if (cache?.isLoaded && args[1] < cache.nodes.revision) replays++;
            return target.watch(...args);
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const c = (cache = new NodeCache(counted, { historySize }));
    await c.start();
    cleanup.push(() => c.stop());
    return { store, cache: c, replays: () => replays };
  }

  const put = async (store: Store, name: string, cpu: string): Promise<number> =>
    (await store.txn({ compare: [], ops: [{ type: "put", key: nodeKey(name), value: encodeNode(Node.fromPartial({ metadata: { name }, status: { capacity: { cpu } } })) }] })).revision;

  async function events(w: Watcher, until: number): Promise<string[]> {
    const out: string[] = [];
    const it = w[Symbol.asyncIterator]();
    for (;;) {
      const ev = (await it.next()).value as NodeWatchEvent;
      out.push(`${ev.type} ${ev.node.metadata?.name} ${ev.revision}`);
      if (ev.revision >= until) break;
    }
    w.cancel();
    return out;
  }

  it("replays a resume within the window from memory, with the events the store's replay gives", async () => {
    const mem = await setup(8);
    const disk = await setup(0);
    let last = 0;
    const watchFrom = async (c: NodeCache, after: number, filter = compileFilter("", "")): Promise<Watcher> =>
      c.watch({ afterRevision: after, filter, sendInitialEvents: false, allowBookmarks: false });
    for (const s of [mem, disk]) {
      for (let i = 0; i < 6; i++) last = await put(s.store, `n${i % 3}`, String(i));
      await s.cache.waitFor(last);
    }
    const from = last - 4;
    const a = await events(await watchFrom(mem.cache, from), last);
    const b = await events(await watchFrom(disk.cache, from), last);
    expect(a).toEqual(b);
    expect(a).toHaveLength(4);
    expect([mem.replays(), disk.replays()]).toEqual([0, 1]);

    // Older than the window: the store replays it.
    for (let i = 0; i < 10; i++) last = await put(mem.store, `n${i % 3}`, `x${i}`);
    await mem.cache.waitFor(last);
    expect(await events(await watchFrom(mem.cache, from), last)).toHaveLength(14);
    expect(mem.replays()).toBe(1);
  });

  it("resumes a watcher pinned to a node unchanged since its revision without any replay, however old the revision", async () => {
    const { store, cache, replays } = await setup(2);
    const first = await put(store, "pinned", "1");
    let last = first;
    for (let i = 0; i < 20; i++) last = await put(store, `other-${i}`, "1");
    await cache.waitFor(last);
    const w = await cache.watch({ afterRevision: first, filter: compileFilter("", "metadata.name=pinned"), sendInitialEvents: false, allowBookmarks: false });
    const changed = await put(store, "pinned", "2");
    expect(await events(w, changed)).toEqual([`MODIFIED pinned ${changed}`]);
    expect(replays()).toBe(0);
  });
});
