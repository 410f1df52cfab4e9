/** WatchCache edge cases that the server tests cannot reach directly. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UnavailableError } from "../../src/errors.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { encodeNode, nodeKey } from "../../src/registry/codec.js";
import { compileFilter } from "../../src/registry/filter.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { WatchCache } from "../../src/watch/cache.js";
import type { NodeWatchEvent } from "../../src/watch/watcher.js";

let dir: string;
let store: SqliteStore;
let cache: WatchCache;
const everything = compileFilter("", "");

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-cache-"));
  store = await SqliteStore.open({ dir });
  cache = new WatchCache({ store, queueLimit: 4 });
  await cache.start();
});
afterEach(async () => {
  cache.stop();
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
