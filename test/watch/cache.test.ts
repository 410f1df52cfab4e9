/** WatchCache edge cases that the server tests cannot reach directly. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UnavailableError } from "../../src/errors.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { encodeNode } from "../../src/model/codec.js";
import { NODE_PREFIX, nodeKey } from "../../src/model/keys.js";
import { compileFilter } from "../../src/model/filter.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { NodeCache } from "../support/node-cache.js";
import type { NodeWatchEvent } from "../../src/watch/watcher.js";
import { gateFirstList } from "./gated-store.js";

let dir: string;
let store: SqliteStore;
let cache: NodeCache;
const everything = compileFilter("", "");

// A full collection on demand, to tell whether anything still holds an object.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-cache-"));
  store = await SqliteStore.open({ dir });
  cache = new NodeCache(store, { queueLimit: 4 });
  await cache.start();
});
afterEach(async () => {
  await cache.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const put = (...names: string[]): Promise<number> =>
  store
    .txn({ compare: [], ops: names.map((name) => ({ type: "put" as const, key: nodeKey(name), value: encodeNode(Node.fromPartial({ metadata: { name } })) })) })
    .then((r) => r.revision);

async function take(it: AsyncIterator<NodeWatchEvent>, n: number): Promise<NodeWatchEvent[]> {
  const out: NodeWatchEvent[] = [];
  while (out.length < n) out.push((await it.next()).value as NodeWatchEvent);
  return out;
}

describe("WatchCache", () => {
  it("refuses a watcher whose start raced with stop instead of leaving it unfed", async () => {
    const rev = await put("a");
    const pending = cache.watch({ afterRevision: rev, filter: everything, sendInitialEvents: true, allowBookmarks: false });
    cache.stop();
    await expect(pending).rejects.toBeInstanceOf(UnavailableError);
    expect(cache.watcherCount).toBe(0);
  });

  it("keeps no event once its watcher has taken it (the window of recent changes keeps changes, not events)", async () => {
    const w = await cache.watch({ filter: everything, sendInitialEvents: false, allowBookmarks: false });
    await cache.waitFor(await put("a"));
    let ev = w.take();
    expect(ev?.node.metadata?.name).toBe("a");
    const taken = new WeakRef(ev!);
    ev = undefined;
    const waiting = w.wait();
    // A WeakRef's target is kept until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(taken.deref()).toBeUndefined();
    // A watcher resuming from the window still gets the change, as an event made anew.
    const resumed = await cache.watch({ afterRevision: 0, filter: everything, sendInitialEvents: false, allowBookmarks: false });
    expect(resumed.take()?.node.metadata?.name).toBe("a");
    w.cancel();
    resumed.cancel();
    await waiting;
  });

  it("delivers every node changed in one transaction, live and from history", async () => {
    const start = await put("x");
    const live = await cache.watch({ filter: everything, sendInitialEvents: false, allowBookmarks: false });
    const rev = await put("y", "z");
    const liveEvents = await take(live[Symbol.asyncIterator](), 2);
    expect(liveEvents.map((e) => [e.node.metadata?.name, e.revision])).toEqual([
      ["y", rev],
      ["z", rev],
    ]);
    const replay = await cache.watch({ afterRevision: start, filter: everything, sendInitialEvents: false, allowBookmarks: false });
    const replayed = await take(replay[Symbol.asyncIterator](), 2);
    expect(replayed.map((e) => e.node.metadata?.name)).toEqual(["y", "z"]);
    live.cancel();
    replay.cancel();
  });

  it("hands live events their node's stored bytes, so the server sends them without encoding the node", async () => {
    await put("s");
    const live = await cache.watch({ filter: everything, sendInitialEvents: false, allowBookmarks: false });
    const labelled = encodeNode(Node.fromPartial({ metadata: { name: "s", labels: { env: "prod" } } }));
    const rev = (await store.txn({ compare: [], ops: [{ type: "put", key: nodeKey("s"), value: labelled }] })).revision;
    const [ev] = await take(live[Symbol.asyncIterator](), 1);
    expect(ev!.type).toBe("MODIFIED");
    expect(ev!.stored).toEqual(labelled);
    // The window of recent changes keeps the change, not its bytes: an event made from it after
    // the fan-out (ADDED, for a watcher the change brought into its selector) has none.
    const resumed = await cache.watch({ afterRevision: rev - 1, filter: compileFilter("env=prod", ""), sendInitialEvents: false, allowBookmarks: false });
    const [added] = await take(resumed[Symbol.asyncIterator](), 1);
    expect(added!.type).toBe("ADDED");
    expect(added!.node).toBe(ev!.node);
    expect(added!.stored).toBeUndefined();
    resumed.cancel();
    live.cancel();
  });

  it("counts watchers while they catch up and releases them when they end", async () => {
    const start = await put("c");
    await put("d");
    const w = await cache.watch({ afterRevision: start, filter: everything, sendInitialEvents: false, allowBookmarks: false });
    const other = await cache.watch({ filter: compileFilter("", "metadata.name=c"), sendInitialEvents: false, allowBookmarks: false });
    expect(cache.watcherCount).toBe(2);
    w.cancel();
    other.cancel();
    expect(cache.watcherCount).toBe(0);
  });
});

describe("WatchCache while it loads", () => {
  it("answers a watch opened before the load is done from the moment it was asked, missing nothing", async () => {
    const first = await put("a");
    const gated = gateFirstList(store, NODE_PREFIX);
    const loading = new NodeCache(gated.store);
    const loaded = loading.start();
    await gated.held;
    expect(loading.isLoaded).toBe(false);
    // From now, with initial events: "now" is the store's revision when the watch arrived.
    const pending = loading.watch({ filter: everything, sendInitialEvents: true, allowBookmarks: false });
    const second = await put("b");
    gated.open();
    await loaded;
    expect(loading.isLoaded).toBe(true);
    const w = await pending;
    const events = await take(w[Symbol.asyncIterator](), 3);
    expect(events.map((e) => [e.type, e.node.metadata?.name, e.revision])).toEqual([
      ["ADDED", "a", first],
      ["BOOKMARK", "", first],
      ["ADDED", "b", second],
    ]);
    w.cancel();
    await loading.stop();
  });

  it("refuses a watch that waited for a load the cache stopped, and stops only once the page in flight is done", async () => {
    const gated = gateFirstList(store, NODE_PREFIX);
    const loading = new NodeCache(gated.store);
    const loaded = loading.start();
    await gated.held;
    const pending = loading.watch({ filter: everything, sendInitialEvents: false, allowBookmarks: false });
    let stopped = false;
    const stopping = loading.stop().then(() => (stopped = true));
    await loaded; // settles on stop, loaded or not
    expect(stopped).toBe(false); // the held list is still in flight
    gated.open();
    await stopping;
    await expect(pending).rejects.toBeInstanceOf(UnavailableError);
    expect(loading.isLoaded).toBe(false);
    expect(loading.watcherCount).toBe(0);
  });
});

describe("WatchCache as the controllers' node informer", () => {
  it("hands subscribers and watchers the one frozen copy of each node", async () => {
    await put("shared");
    const seen: { type: string; node: unknown }[] = [];
    const unsubscribe = cache.subscribe({
      onAdd: (_, node) => seen.push({ type: "add", node }),
      onUpdate: (_, node) => seen.push({ type: "update", node }),
      onDelete: (_, old) => seen.push({ type: "delete", node: old }),
    });
    const node = cache.get("shared")!;
    expect(seen).toEqual([{ type: "add", node }]);
    expect(seen[0]!.node).toBe(node);
    for (const part of [node, node.metadata, node.metadata.labels, node.spec, node.spec.taints, node.status, node.status.conditions]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(() => {
      (node.metadata.labels as Record<string, string>).x = "y";
    }).toThrow(TypeError);

    const live = await cache.watch({ filter: everything, sendInitialEvents: false, allowBookmarks: false });
    const rev = await put("shared");
    await cache.waitFor(rev);
    const [ev] = await take(live[Symbol.asyncIterator](), 1);
    const updated = cache.get("shared")!;
    expect(ev!.node).toBe(updated);
    expect(seen.at(-1)).toEqual({ type: "update", node: updated });
    expect(seen.at(-1)!.node).toBe(updated);
    unsubscribe();
    await cache.waitFor(await put("shared"));
    expect(seen).toHaveLength(2);
    live.cancel();
  });
});
