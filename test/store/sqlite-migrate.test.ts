/**
 * Schema 1 → 2 → 3 and 2 → 3 (src/store/sqlite-migrate.ts): a store file as schema 1 left it
 * opens as schema 3 with the same state at every revision, the same history (prev versions
 * included), and goes on taking writes and compactions; so does a schema 2 file, which becomes
 * schema 3 once its check passes. The older files are made from a schema 3 one by undoing each
 * difference (the layouts sqlite-sql.ts describes), after writes, deletes, re-creates and a
 * compaction. Schema 3 keeps a version's value in its history row only.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { UnavailableError } from "../../src/errors.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { del, plain, put, Recorder } from "./conformance-support.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-migrate-"));
  dirs.push(dir);
  return dir;
}

/** `f` of the store file in `dir` (the store closed), on a connection of its own. */
function withFile<T>(dir: string, f: (db: Database.Database) => T, opts: Database.Options = {}): T {
  const db = new Database(path.join(dir, "nodeplane.db"), opts);
  try {
    return f(db);
  } finally {
    db.close();
  }
}

const READ_ONLY: Database.Options = { readonly: true };

/** Delete the history row holding the value of the key bound to it. */
const DROP_HISTORY_ROW = "DELETE FROM log WHERE id = (SELECT log_id FROM kv WHERE key = ?)";

/** Every `kv` row with its value, as schema 2 held it (schema 3 keeps it in the history row). */
const VALUES_IN_KV = `UPDATE kv SET value = (SELECT l.value FROM log AS l WHERE l.id = kv.log_id) WHERE length(value) = 0 AND log_id > 0;`;

/** Rewrite a closed store's file the way schema 2 held the same data. */
function toSchema2(dir: string): void {
  withFile(dir, (db) => db.exec(`${VALUES_IN_KV} UPDATE meta SET value = 2 WHERE name = 'schema_version';`));
}

/**
 * Rewrite a closed store's file the way schema 1 held the same data; `historyGone`: a key whose
 * latest version's history row schema 1 had compacted away (its value in `kv` alone).
 */
function toSchema1(dir: string, historyGone?: string): void {
  withFile(dir, (db) => {
    db.exec(VALUES_IN_KV);
    if (historyGone !== undefined) db.prepare(DROP_HISTORY_ROW).run(historyGone);
    db.exec(`
      CREATE TABLE kv_v1 (key TEXT PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL);
      INSERT INTO kv_v1 SELECT key, value, create_rev, mod_rev FROM kv;
      DROP TABLE kv;
      ALTER TABLE kv_v1 RENAME TO kv;
      ALTER TABLE log DROP COLUMN prev_id;
      CREATE UNIQUE INDEX log_key_rev ON log (key, rev);
      DROP INDEX log_rev;
      DROP INDEX log_deletes;
      CREATE INDEX log_rev ON log (rev);
      UPDATE meta SET value = 1 WHERE name = 'schema_version';
    `);
  });
}

function schemaOf(dir: string): { version: number; kvColumns: string[]; logColumns: string[]; indexes: string[] } {
  return withFile(dir, (db) => {
    const columns = (table: string): string[] => (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map((c) => c.name);
    return {
      version: (db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").get() as { value: number }).value,
      kvColumns: columns("kv"),
      logColumns: columns("log"),
      indexes: (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").all() as { name: string }[]).map((r) => r.name),
    };
  }, READ_ONLY);
}

function indexColumns(dir: string, index: string): string[] {
  return withFile(dir, (db) => (db.prepare(`SELECT name FROM pragma_index_info('${index}')`).all() as { name: string }[]).map((c) => c.name), READ_ONLY);
}

/** The `kv` rows' stored values' lengths and log_ids, by key. */
function kvRows(dir: string): Record<string, [number, number]> {
  return withFile(dir, (db) => {
    const rows = db.prepare("SELECT key, length(value) AS len, log_id FROM kv ORDER BY key").all() as { key: string; len: number; log_id: number }[];
    return Object.fromEntries(rows.map((r) => [r.key, [r.len, r.log_id]]));
  }, READ_ONLY);
}

describe("SQLite schema 1 → 2 → 3", () => {
  it("a schema 1 store opens migrated: the same state at every revision after the compact one, the same history with prev versions, then writes and compacts", async () => {
    const dir = tempDir();
    let store = await SqliteStore.open({ dir });
    // Written once, before the compact revision: schema 1 had compacted its history row away.
    await put(store, "/k/static", "from-the-start");
    for (let i = 0; i < 120; i++) {
      const key = `/k/${i % 9}`;
      if (i % 11 === 10) await del(store, key);
      else await put(store, key, `v${i}`);
    }
    expect(store.migrated).toBeUndefined();
    const compactAt = 40;
    await store.compact(compactAt);
    const head = await store.currentRevision();
    const states = new Map<number, unknown>();
    for (let r = compactAt; r <= head; r++) states.set(r, (await store.list("/k/", { revision: r })).kvs.map(plain));
    const history = new Recorder();
    store.watch("/k/", compactAt, history);
    await history.untilRevision(head);
    await store.close();

    toSchema1(dir, "/k/static");
    expect(schemaOf(dir)).toMatchObject({ version: 1, kvColumns: ["key", "value", "create_rev", "mod_rev"] });
    expect(indexColumns(dir, "log_rev")).toEqual(["rev"]);

    store = await SqliteStore.open({ dir });
    try {
      expect(store.migrated?.from).toBe(1);
      expect(kvRows(dir)["/k/static"]).toEqual([Buffer.byteLength("from-the-start"), 0]);
      expect(schemaOf(dir)).toEqual({
        version: 3,
        kvColumns: ["key", "value", "create_rev", "mod_rev", "log_id"],
        logColumns: ["id", "rev", "key", "deleted", "value", "create_rev", "prev_rev", "prev_id"],
        indexes: ["log_deletes", "log_rev"],
      });
      expect(indexColumns(dir, "log_rev")).toEqual(["rev", "key"]);
      expect(await store.currentRevision()).toBe(head);
      expect(await store.compactRevision()).toBe(compactAt);
      for (const [r, state] of states) expect((await store.list("/k/", { revision: r })).kvs.map(plain)).toEqual(state);
      const again = new Recorder();
      store.watch("/k/", compactAt, again);
      await again.untilRevision(head);
      expect(again.summaries).toEqual(history.summaries);
      again.expectClean();

      // Writes after the migration chain onto the migrated history: prev versions, past lists, compaction.
      const live = new Recorder();
      store.watch("/k/", head, live);
      await put(store, "/k/0", "after");
      await del(store, "/k/1");
      const end = await store.currentRevision();
      await live.untilRevision(end);
      expect(live.events.map((e) => [e.type, e.kv.key, e.prev ? new TextDecoder().decode(e.prev.value) : undefined])).toEqual([
        ["put", "/k/0", (states.get(head) as { key: string; value: string }[]).find((kv) => kv.key === "/k/0")?.value],
        ["delete", "/k/1", (states.get(head) as { key: string; value: string }[]).find((kv) => kv.key === "/k/1")?.value],
      ]);
      expect((await store.list("/k/", { revision: head })).kvs.map(plain)).toEqual(states.get(head));
      await store.compact(end);
      expect((await store.list("/k/")).kvs.map(plain)).toEqual((await store.list("/k/", { revision: end })).kvs.map(plain));
    } finally {
      await store.close();
    }
  });

  it("a schema 2 store reads as it is, becomes schema 3 once checked, and keeps each new version's value in its history row only", async () => {
    const dir = tempDir();
    let store = await SqliteStore.open({ dir });
    await store.checked;
    expect(store.schemaRaisedFrom).toBeUndefined(); // a new file is schema 3 from the start
    for (let i = 0; i < 40; i++) await put(store, `/k/${i % 5}`, `v${i}`);
    await del(store, "/k/4");
    const head = await store.currentRevision();
    const states = new Map<number, unknown>();
    for (let r = 1; r <= head; r++) states.set(r, (await store.list("/k/", { revision: r })).kvs.map(plain));
    await store.close();
    // Schema 3 as written: every kv row's value empty, in its history row.
    expect(Object.values(kvRows(dir)).every(([len, logId]) => len === 0 && logId > 0)).toBe(true);

    toSchema2(dir);
    expect(schemaOf(dir).version).toBe(2);
    expect(Object.values(kvRows(dir)).every(([len]) => len > 0)).toBe(true);
    store = await SqliteStore.open({ dir });
    try {
      await store.checked;
      expect(schemaOf(dir).version).toBe(3);
      expect(store.migrated).toBeUndefined();
      expect(store.schemaRaisedFrom).toBe(2);
      for (const [r, state] of states) expect((await store.list("/k/", { revision: r })).kvs.map(plain)).toEqual(state);
      expect(plain((await store.get("/k/0"))!)).toMatchObject({ key: "/k/0", value: "v35" });
      await put(store, "/k/0", "after");
      expect(kvRows(dir)["/k/0"]![0]).toBe(0);
      expect(kvRows(dir)["/k/1"]![0]).toBeGreaterThan(0); // untouched rows stay as schema 2 wrote them
      expect(plain((await store.get("/k/0"))!)).toMatchObject({ value: "after" });
      expect((await store.list("/k/", { revision: head })).kvs.map(plain)).toEqual(states.get(head));
      await store.compact(await store.currentRevision());
      expect((await store.list("/k/")).kvs.map(plain).map((kv) => (kv as { value: string }).value)).toEqual(["after", "v36", "v37", "v38"]);
    } finally {
      await store.close();
    }
  });

  it("a key whose history row is gone (a damaged file) fails its reads saying so, never reads as empty", async () => {
    const dir = tempDir();
    let store = await SqliteStore.open({ dir });
    await put(store, "/k/a", "1");
    await put(store, "/k/b", "2");
    await store.close();
    withFile(dir, (db) => db.prepare(DROP_HISTORY_ROW).run("/k/a"));
    store = await SqliteStore.open({ dir });
    try {
      for (const read of [() => store.get("/k/a"), () => store.list("/k/")]) {
        const err = await read().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(UnavailableError);
        expect(((err as Error).cause as Error).message).toMatch(/history row holding the value of \/k\/a is missing: the store file is damaged/);
      }
      expect(plain((await store.get("/k/b"))!)).toMatchObject({ value: "2" });
    } finally {
      await store.close();
    }
  });

  it("a store of a newer schema is refused, naming its version, and left as it was", async () => {
    const dir = tempDir();
    const store = await SqliteStore.open({ dir });
    await put(store, "/k/a", "1");
    await store.close();
    withFile(dir, (db) => db.exec("UPDATE meta SET value = 4 WHERE name = 'schema_version'"));
    const before = fs.readFileSync(path.join(dir, "nodeplane.db"));
    const err = await SqliteStore.open({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/schema version 4, not 3/);
    expect(fs.readFileSync(path.join(dir, "nodeplane.db")).equals(before)).toBe(true);
  });
});
