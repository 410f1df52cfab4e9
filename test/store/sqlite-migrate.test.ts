/**
 * Schema 1 → 2 (src/store/sqlite-migrate.ts): a store file as schema 1 left it opens as schema 2
 * with the same state at every revision, the same history (prev versions included), and goes on
 * taking writes and compactions. The schema 1 file is made from a schema 2 one by undoing each
 * difference (the layout sqlite-sql.ts describes for schema 1), after writes, deletes,
 * re-creates and a compaction.
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

/** Rewrite a closed store's file the way schema 1 held the same data. */
function toSchema1(dir: string): void {
  const db = new Database(path.join(dir, "nodeplane.db"));
  try {
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
  } finally {
    db.close();
  }
}

function schemaOf(dir: string): { version: number; kvColumns: string[]; logColumns: string[]; indexes: string[] } {
  const db = new Database(path.join(dir, "nodeplane.db"), { readonly: true });
  try {
    const columns = (table: string): string[] => (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map((c) => c.name);
    return {
      version: (db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").get() as { value: number }).value,
      kvColumns: columns("kv"),
      logColumns: columns("log"),
      indexes: (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").all() as { name: string }[]).map((r) => r.name),
    };
  } finally {
    db.close();
  }
}

function indexColumns(dir: string, index: string): string[] {
  const db = new Database(path.join(dir, "nodeplane.db"), { readonly: true });
  try {
    return (db.prepare(`SELECT name FROM pragma_index_info('${index}')`).all() as { name: string }[]).map((c) => c.name);
  } finally {
    db.close();
  }
}

describe("SQLite schema 1 → 2", () => {
  it("a schema 1 store opens migrated: the same state at every revision after the compact one, the same history with prev versions, then writes and compacts", async () => {
    const dir = tempDir();
    let store = await SqliteStore.open({ dir });
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

    toSchema1(dir);
    expect(schemaOf(dir)).toMatchObject({ version: 1, kvColumns: ["key", "value", "create_rev", "mod_rev"] });
    expect(indexColumns(dir, "log_rev")).toEqual(["rev"]);

    store = await SqliteStore.open({ dir });
    try {
      expect(store.migrated?.from).toBe(1);
      expect(schemaOf(dir)).toEqual({
        version: 2,
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

  it("a store of a newer schema is refused, naming its version, and left as it was", async () => {
    const dir = tempDir();
    const store = await SqliteStore.open({ dir });
    await put(store, "/k/a", "1");
    await store.close();
    const db = new Database(path.join(dir, "nodeplane.db"));
    db.exec("UPDATE meta SET value = 3 WHERE name = 'schema_version'");
    db.close();
    const before = fs.readFileSync(path.join(dir, "nodeplane.db"));
    const err = await SqliteStore.open({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/schema version 3, not 2/);
    expect(fs.readFileSync(path.join(dir, "nodeplane.db")).equals(before)).toBe(true);
  });
});
