/**
 * The SQLite schema of SqliteStore and every statement it runs, prepared once per connection:
 * the writer's (WriteStatements, in the writer thread) and the read connection's (ReadStatements).
 *
 * - `kv`: the current state, one row per live key (fast get and list at head).
 * - `log`: the history, one row per change. `id` is insertion order, which is revision order
 *   and, within a revision, op order (rowids only grow: a new row takes max(id) + 1). A
 *   delete row holds the deleted value, create_rev and (as prev_rev) mod_rev, so its event's
 *   `prev` needs no join. A put row's prev_rev is the mod_rev it replaced (0 for a create).
 * - `meta`: the current and compact revisions, written in the same transactions as the
 *   changes they describe, so they survive restarts exactly.
 */
import type Database from "better-sqlite3";
import type { KeyValue } from "./store.js";

export const SCHEMA_VERSION = 1;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
  id INTEGER PRIMARY KEY,
  rev INTEGER NOT NULL,
  key TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  value BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  prev_rev INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_rev ON log (rev);
CREATE UNIQUE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES
  ('schema_version', ${SCHEMA_VERSION}), ('revision', 0), ('compact_revision', 0);
`;

export interface KvRow {
  key: string;
  value: Buffer;
  create_rev: number;
  mod_rev: number;
}

export interface LogRow {
  rev: number;
  key: string;
  deleted: number;
  value: Buffer;
  create_rev: number;
  prev_rev: number;
  /** The replaced version's value and create_rev, for a put that replaced one. */
  prev_value: Buffer | null;
  prev_create_rev: number | null;
}

export function toKeyValue(row: KvRow): KeyValue {
  return { key: row.key, value: row.value, createRevision: row.create_rev, modRevision: row.mod_rev };
}

/** Range bounds of a list or history read: `lo` with `>` or `>=`, `hi` exclusive if set. */
export interface KeyRange {
  lo: string;
  inclusive: boolean;
  hi: string | undefined;
}

type Variant = `${"ge" | "gt"}${"hi" | "open"}`;

function variant(r: KeyRange): Variant {
  return `${r.inclusive ? "ge" : "gt"}${r.hi === undefined ? "open" : "hi"}`;
}

/** `key >= @lo` or `key > @lo`, and `key < @hi` when bounded; a plain range the index serves. */
function rangeSql(col: string, v: Variant): string {
  const lower = v.startsWith("ge") ? `${col} >= @lo` : `${col} > @lo`;
  return v.endsWith("hi") ? `${lower} AND ${col} < @hi` : lower;
}

type RangeParams = { lo: string; hi?: string; limit: number };

const GET_KV = "SELECT key, value, create_rev, mod_rev FROM kv WHERE key = ?";
const GET_META = "SELECT value FROM meta WHERE name = ?";

/** What the writer (src/store/sqlite-writer.ts) runs: point reads inside its transactions, changes, compaction. */
export class WriteStatements {
  readonly getKv: Database.Statement<[string], KvRow>;
  readonly upsertKv: Database.Statement<[string, Uint8Array, number, number]>;
  readonly deleteKv: Database.Statement<[string]>;
  readonly insertLog: Database.Statement<[number, string, number, Uint8Array, number, number]>;
  readonly getMeta: Database.Statement<[string], { value: number }>;
  readonly setMeta: Database.Statement<[number, string]>;
  /** The id of the first log row with rev > ?1, else max(id) + 1: where compaction to ?1 stops. */
  readonly compactBound: Database.Statement<[number], { id: number }>;
  /** The id of the (?3 + 1)-th row with ?1 < id < ?2: the end of one compaction batch. */
  readonly nthIdBetween: Database.Statement<[number, number, number], { id: number }>;
  /** Delete, among rows @from < id <= @to with rev <= @rev, tombstones and rows superseded at or before @rev. */
  readonly compactRange: Database.Statement<{ from: number; to: number; rev: number }>;

  constructor(db: Database.Database) {
    this.getKv = db.prepare(GET_KV);
    this.upsertKv = db.prepare(
      `INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev`,
    );
    this.deleteKv = db.prepare("DELETE FROM kv WHERE key = ?");
    this.insertLog = db.prepare(
      "INSERT INTO log (rev, key, deleted, value, create_rev, prev_rev) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.getMeta = db.prepare(GET_META);
    this.setMeta = db.prepare("UPDATE meta SET value = ? WHERE name = ?");
    this.compactBound = db.prepare(
      `SELECT coalesce((SELECT id FROM log WHERE rev > ? ORDER BY rev, id LIMIT 1), (SELECT max(id) FROM log) + 1, 1) AS id`,
    );
    this.nthIdBetween = db.prepare("SELECT id FROM log WHERE id > ? AND id < ? ORDER BY id LIMIT 1 OFFSET ?");
    this.compactRange = db.prepare(
      `DELETE FROM log WHERE id > @from AND id <= @to AND rev <= @rev AND (deleted = 1 OR EXISTS (
         SELECT 1 FROM log AS n WHERE n.key = log.key AND n.rev > log.rev AND n.rev <= @rev))`,
    );
  }
}

/** What the store's read connection runs: gets, lists (at head and in the past), history for watches. */
export class ReadStatements {
  readonly getKv: Database.Statement<[string], KvRow>;
  readonly getMeta: Database.Statement<[string], { value: number }>;
  readonly ping: Database.Statement<[], { one: number }>;

  private readonly headList = new Map<Variant, Database.Statement<[RangeParams], KvRow>>();
  private readonly pastList = new Map<Variant, Database.Statement<[RangeParams & { rev: number }], KvRow>>();
  private readonly history = new Map<
    Variant,
    Database.Statement<[RangeParams & { after: number; until: number }], LogRow>
  >();

  constructor(private readonly db: Database.Database) {
    this.getKv = db.prepare(GET_KV);
    this.getMeta = db.prepare(GET_META);
    this.ping = db.prepare("SELECT 1 AS one");
  }

  /** Live keys in a range, ascending, at most `limit` (-1: all). */
  listHead(r: KeyRange, limit: number): KvRow[] {
    const v = variant(r);
    let stmt = this.headList.get(v);
    if (!stmt) {
      stmt = this.db.prepare(
        `SELECT key, value, create_rev, mod_rev FROM kv WHERE ${rangeSql("key", v)} ORDER BY key LIMIT @limit`,
      );
      this.headList.set(v, stmt);
    }
    return stmt.all(params(r, limit));
  }

  /**
   * Keys in a range as of revision `rev`, from the history: per key the newest row with
   * rev <= @rev, unless that row is a delete. (SQLite takes bare columns from the row that
   * holds the MAX(), which is what makes this one grouped scan of log_key_rev.)
   */
  listPast(r: KeyRange, rev: number, limit: number): KvRow[] {
    const v = variant(r);
    let stmt = this.pastList.get(v);
    if (!stmt) {
      stmt = this.db.prepare(
        `SELECT key, value, create_rev, MAX(rev) AS mod_rev, deleted FROM log
         WHERE ${rangeSql("key", v)} AND rev <= @rev
         GROUP BY key HAVING deleted = 0 ORDER BY key LIMIT @limit`,
      );
      this.pastList.set(v, stmt);
    }
    return stmt.all({ ...params(r, limit), rev });
  }

  /** Changes in a range with after < rev <= until, in revision then op order, at most `limit`. */
  readHistory(r: KeyRange, after: number, until: number, limit: number): LogRow[] {
    const v = variant(r);
    let stmt = this.history.get(v);
    if (!stmt) {
      stmt = this.db.prepare(
        `SELECT l.rev, l.key, l.deleted, l.value, l.create_rev, l.prev_rev,
                p.value AS prev_value, p.create_rev AS prev_create_rev
         FROM log AS l INDEXED BY log_rev
         LEFT JOIN log AS p ON l.deleted = 0 AND l.prev_rev > 0 AND p.key = l.key AND p.rev = l.prev_rev
         WHERE l.rev > @after AND l.rev <= @until AND ${rangeSql("l.key", v)}
         ORDER BY l.rev, l.id LIMIT @limit`,
      );
      this.history.set(v, stmt);
    }
    return stmt.all({ ...params(r, limit), after, until });
  }
}

function params(r: KeyRange, limit: number): RangeParams {
  return r.hi === undefined ? { lo: r.lo, limit } : { lo: r.lo, hi: r.hi, limit };
}
