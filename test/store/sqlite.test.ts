/**
 * SqliteStore: the conformance suite (three times: default sizes; tiny batches and pages so
 * that batch splitting, history paging and batched compaction run in every test; and the
 * writer inline on the store's thread), plus what only SQLite can show: the file, a failed
 * commit, a second writer, compaction internals, the writer thread dying, close mid-commit.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { CompactedError, UnavailableError } from "../../src/errors.js";
import { SqliteStore, type SqliteStoreOptions } from "../../src/store/sqlite.js";
import type { WatchEvent } from "../../src/store/store.js";
import { describeStoreConformance, type StoreFactory } from "./conformance.js";
import { bytes, del, plain, put, Recorder } from "./conformance-support.js";

const tempDirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-store-"));
  tempDirs.push(dir);
  return dir;
}

function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

function sqliteFactory(opts: Omit<SqliteStoreOptions, "dir"> = {}): StoreFactory {
  let dir = "";
  return {
    open: () => SqliteStore.open({ ...opts, dir: (dir = tempDir()) }),
    reopen: () => SqliteStore.open({ ...opts, dir }),
    cleanup: async () => removeTempDirs(),
  };
}

describeStoreConformance("sqlite", sqliteFactory());
describeStoreConformance("sqlite, tiny batches and pages", sqliteFactory({ maxBatch: 7, historyPageSize: 3, compactBatchRows: 5 }));
describeStoreConformance("sqlite, writer inline", sqliteFactory({ writerThread: false }));

describe("SqliteStore", () => {
  const open: SqliteStore[] = [];
  const openStore = async (opts: SqliteStoreOptions): Promise<SqliteStore> => {
    const store = await SqliteStore.open(opts);
    open.push(store);
    return store;
  };
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    removeTempDirs();
  });

  it("never answers a get with a revision ahead of currentRevision(), even while the writer's reply is on its way", async () => {
    const store = await openStore({ dir: tempDir() });
    let early = 0;
    for (let i = 0; i < 200; i++) {
      let settled = false;
      const written = put(store, `/k/${i}`, `v${i}`).then(() => (settled = true));
      // Read on every turn until the write is answered: a read that sees the row first is the case.
      while (!settled) {
        const kv = await store.get(`/k/${i}`);
        if (kv && !settled) {
          early++;
          expect(await store.currentRevision()).toBeGreaterThanOrEqual(kv.modRevision);
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await written;
    }
    // The commit is visible to the read connection before the reply is handled in most rounds.
    expect(early).toBeGreaterThan(0);
  });

  it("creates its directory and nodeplane.db in it; an empty store is at revision 0", async () => {
    const dir = path.join(tempDir(), "a", "b");
    const store = await openStore({ dir });
    expect(fs.existsSync(path.join(dir, "nodeplane.db"))).toBe(true);
    expect(await store.currentRevision()).toBe(0);
    expect(await store.compactRevision()).toBe(0);
  });

  it("fails to open with UnavailableError naming the file", async () => {
    const file = path.join(tempDir(), "not-a-dir");
    fs.writeFileSync(file, "");
    const err = await SqliteStore.open({ dir: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(file);
  });

  it("fails to open a file that is not a SQLite database with UnavailableError naming it", async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, "nodeplane.db"), "not a database, not at all, no".repeat(100));
    const err = await SqliteStore.open({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(path.join(dir, "nodeplane.db"));
    expect((err as Error).message).toContain("not a database");
  });

  it("close lets a batch in the writer's hands and the ones queued behind it commit", async () => {
    const dir = tempDir();
    const store = await SqliteStore.open({ dir, maxBatch: 10 });
    const first = Array.from({ length: 10 }, (_, i) => put(store, `/k/a${i}`, "v"));
    // One turn: the first batch has gone to the writer; these queue behind it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const behind = Array.from({ length: 25 }, (_, i) => put(store, `/k/b${i}`, "v"));
    const closed = store.close();
    const revisions = await Promise.all([...first, ...behind]);
    await closed;
    expect(new Set(revisions).size).toBe(35);
    await expect(put(store, "/k/late", "v")).rejects.toBeInstanceOf(UnavailableError);
    const again = await openStore({ dir });
    expect((await again.list("/k/")).kvs.length).toBe(35);
    expect(await again.currentRevision()).toBe(Math.max(...revisions));
  });

  it("if the writer thread dies, writes and ping fail with UnavailableError; reads and close still work", async () => {
    let thread: Worker | undefined;
    const store = await openStore({ dir: tempDir(), onWriterThread: (w) => (thread = w) });
    const r1 = await put(store, "/k/a", "1");
    const watch = new Recorder();
    store.watch("/k/", r1, watch);

    const inFlight = Array.from({ length: 20 }, (_, i) => put(store, `/k/x${i}`, "v"));
    // One turn: the batch has gone to the writer.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const queued = put(store, "/k/queued", "v");
    await thread!.terminate();
    for (const res of await Promise.allSettled([...inFlight, queued])) {
      expect(res.status).toBe("rejected");
      expect(res.status === "rejected" && res.reason).toBeInstanceOf(UnavailableError);
    }
    const lost = await inFlight[0]!.catch((e: unknown) => e);
    expect((lost as Error).message).toMatch(/while committing 20 transaction\(s\); whether they were applied is unknown/);

    const later = await put(store, "/k/b", "1").catch((e: unknown) => e);
    expect(later).toBeInstanceOf(UnavailableError);
    expect((later as Error).message).toContain("writer thread stopped");
    await expect(store.ping()).rejects.toBeInstanceOf(UnavailableError);
    await expect(store.compact(r1)).rejects.toBeInstanceOf(UnavailableError);
    expect(plain(await store.get("/k/a"))?.value).toBe("1");
    expect((await store.list("/k/")).kvs.length).toBeGreaterThanOrEqual(1);

    await store.close();
    expect(await watch.ended()).toBeInstanceOf(UnavailableError);
    watch.expectClean();
  });

  it("a failed commit rejects every txn of the batch with UnavailableError and applies none of it", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, busyTimeoutMs: 0 });
    const r1 = await put(store, "/k/a", "1");
    const watch = new Recorder();
    store.watch("/k/", r1, watch);

    // Another connection holds the write lock: the next commit fails at once (busy timeout 0).
    const other = new Database(path.join(dir, "nodeplane.db"));
    other.exec("BEGIN IMMEDIATE");
    const batch = [
      put(store, "/k/b", "1"),
      store.txn({ compare: [{ key: "/k/a", modRevision: 0 }], ops: [{ type: "put", key: "/k/a", value: bytes("x") }] }),
      store.txn({ compare: [], ops: [] }),
    ];
    const results = await Promise.allSettled(batch);
    other.exec("ROLLBACK");
    other.close();
    for (const res of results) {
      expect(res.status).toBe("rejected");
      const reason: unknown = res.status === "rejected" ? res.reason : undefined;
      expect(reason).toBeInstanceOf(UnavailableError);
      expect((reason as Error).message).toMatch(/committing 3 transaction\(s\) failed, none applied/);
      expect(String((reason as Error).cause)).toContain("locked");
    }
    expect(await store.currentRevision()).toBe(r1);
    expect(await store.get("/k/b")).toBeUndefined();

    // The store carries on; the failed batch left no revision and no event behind.
    const r2 = await put(store, "/k/c", "1");
    expect(r2).toBeGreaterThan(r1);
    await watch.untilRevision(r2);
    expect(watch.summaries).toEqual([`put /k/c=1@${r2}`]);
  });

  it("refuses writes once another process has written the same file", async () => {
    const dir = tempDir();
    const first = await openStore({ dir });
    await put(first, "/k/a", "1");
    const second = await openStore({ dir });
    await put(second, "/k/a", "2");
    const err = await put(first, "/k/a", "3").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain("another process");
    expect(plain(await second.get("/k/a"))?.value).toBe("2");
  });

  it("a catching-up watch never splits a revision across calls, even one larger than a page", async () => {
    const store = await openStore({ dir: tempDir(), historyPageSize: 2 });
    const r1 = await put(store, "/k/a", "1");
    const big = await store.txn({
      compare: [],
      ops: Array.from({ length: 5 }, (_, i) => ({ type: "put" as const, key: `/k/m${i}`, value: bytes("m") })),
    });
    const r3 = await put(store, "/k/b", "1");
    const last = await put(store, "/k/c", "1");
    const calls: WatchEvent[][] = [];
    const rec = new Recorder();
    store.watch("/k/", 0, {
      onEvents: (evs) => {
        calls.push(evs);
        rec.onEvents(evs);
      },
      onProgress: (r) => rec.onProgress(r),
      onError: (e) => rec.onError(e),
    });
    await rec.untilRevision(last);
    expect(calls.map((evs) => evs.map((e) => e.kv.modRevision))).toEqual([[r1], Array(5).fill(big.revision), [r3], [last]]);
  });

  it("compaction deletes superseded rows in batches, and no read below R ever sees a partly compacted history", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, compactBatchRows: 3 });
    for (let i = 0; i < 200; i++) {
      if (i % 10 === 9) await del(store, `/k/${i % 8}`);
      else await put(store, `/k/${i % 8}`, `v${i}`);
    }
    const r = await store.currentRevision();
    await put(store, "/k/0", "after");
    const before = (await store.list("/k/", { revision: r - 1 })).kvs.map(plain);
    const rowsBefore = countLogRows(dir);

    const compaction = store.compact(r);
    let done = false;
    const finish = () => (done = true);
    void compaction.then(finish, finish);
    while (!done) {
      // Let a compaction batch run between reads (list alone only yields microtasks).
      await new Promise<void>((resolve) => setImmediate(resolve));
      // Each answer is either the exact old state or CompactedError: never a half-deleted history.
      const res = await store.list("/k/", { revision: r - 1 }).then(
        (page) => page.kvs.map(plain),
        (e: unknown) => e,
      );
      if (res instanceof CompactedError) break;
      expect(res).toEqual(before);
    }
    await compaction;
    const liveAtR = (await store.list("/k/", { revision: r })).kvs.length;
    // Left: one row per key alive at R, plus the one change after R.
    expect(countLogRows(dir)).toBe(liveAtR + 1);
    expect(rowsBefore).toBe(201);
  });
});

function countLogRows(dir: string): number {
  const db = new Database(path.join(dir, "nodeplane.db"), { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM log").get() as { n: number }).n;
  } finally {
    db.close();
  }
}
