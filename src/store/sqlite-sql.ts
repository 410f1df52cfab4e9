/**
 * The SQLite schema of SqliteStore and every statement it runs, prepared once per connection:
 * the writer's (WriteStatements, in the writer thread) and the read connection's (ReadStatements).
 *
 * - `kv`: the current state, one row per live key, clustered by key (WITHOUT ROWID): a key's row
 *   is found and rewritten in one b-tree, and keys of one kind (all Leases) share pages, so a
 *   checkpoint renewing many Leases rewrites few pages. `log_id` is the history row that wrote
 *   this version, and that row holds its value: `value` is empty then (every version written
 *   since schema 3) and reads take the value from the row (`KV_VALUE`; compaction never removes
 *   the row of a live version: it is nobody's prev_id yet, and not a delete). Only a version
 *   whose history row is gone (log_id 0: a schema 1 file's, compacted before its migration)
 *   keeps its value here. A node (~2.5 KB) kept in both overflowed its `kv` page (a WITHOUT
 *   ROWID row keeps ~1 KB in its page): each change wrote ~7 pages to the WAL and cost SQLite
 *   ~170 µs of CPU with its fsync; with one copy ~125 µs, and the file is ~40 % smaller.
 * - `log`: the history, one row per change. `id` is insertion order, which is revision order
 *   and, within a revision, op order (rowids only grow: a new row takes max(id) + 1). A
 *   delete row holds the deleted value, create_rev and (as prev_rev) mod_rev, so its event's
 *   `prev` needs no join. A put row's prev_rev is the mod_rev it replaced (0 for a create).
 *   `prev_id` is the row of the version a change replaced or deleted (0 for a create): the
 *   history of a key is a chain by row id, so no index by key is kept (one random b-tree
 *   insert less per change). `log_rev` is by (rev, key): reads of the changes after a revision
 *   in a key range (watches catching up) filter keys in the index, not in the rows;
 *   `log_deletes` holds the deletes alone (past lists find the keys deleted since in it).
 *   A dangling prev_id (its row compacted) is never reused: rowids
 *   are only reused above the largest live one, and the row holding the reference is above it.
 * - `meta`: the current and compact revisions, written in the same transactions as the
 *   changes they describe, so they survive restarts exactly.
 *
 * Schema 1 (before 2026-12) had a rowid `kv` without `log_id`, no `prev_id`, `log_rev` on (rev)
 * alone and an index log_key_rev (key, rev); sqlite-migrate.ts turns it into schema 2. Schema 2
 * has the tables of schema 3 and a value in every `kv` row, which schema 3 reads as they are:
 * moving to 3 is the version number alone, so that an older nodeplane refuses a file whose `kv`
 * values it would read as empty.
 */
import type Database from "better-sqlite3";
import type { KeyValue } from "./store.js";

export const SCHEMA_VERSION = 3;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL,
  log_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
  id INTEGER PRIMARY KEY,
  rev INTEGER NOT NULL,
  key TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  value BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  prev_rev INTEGER NOT NULL,
  prev_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_rev ON log (rev, key);
CREATE INDEX IF NOT EXISTS log_deletes ON log (rev, key) WHERE deleted = 1;
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

/** A key's current version with the history row that wrote it (the writer's reads, past lists' walks). */
export interface LoggedKvRow extends KvRow {
  log_id: number;
}

/** One history row, as a walk back along a key's versions reads it. */
interface HistoryRow {
  rev: number;
  deleted: number;
  value: Buffer;
  create_rev: number;
  prev_id: number;
}

export function toKeyValue(row: KvRow): KeyValue {
  return { key: row.key, value: valueOf(row), createRevision: row.create_rev, modRevision: row.mod_rev };
}

/** A `kv` row's value as KV_VALUE read it: null only when the history row holding it is gone (a damaged file). */
export function valueOf(row: { key: string; value: Buffer | null }): Buffer {
  if (row.value === null) throw new Error(`the history row holding the value of ${row.key} is missing: the store file is damaged`);
  return row.value;
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

/**
 * A `kv` row's value, from the history row that wrote it unless the row keeps it (see the
 * header): select it FROM `KV_FROM`. An empty value written as such is empty in its history
 * row too.
 */
const KV_VALUE = "CASE WHEN length(kv.value) = 0 AND kv.log_id > 0 THEN l.value ELSE kv.value END AS value";
const KV_FROM = "kv LEFT JOIN log AS l ON l.id = kv.log_id";
const GET_KV = `SELECT kv.key, ${KV_VALUE}, kv.create_rev, kv.mod_rev FROM ${KV_FROM} WHERE kv.key = ?`;
const GET_META = "SELECT value FROM meta WHERE name = ?";

/** What the writer (src/store/sqlite-writer.ts) runs: point reads inside its transactions, changes, compaction. */
export class WriteStatements {
  readonly getKv: Database.Statement<[string], LoggedKvRow>;
  /** (key, create_rev, mod_rev, log_id): the value is in the history row log_id. */
  readonly upsertKv: Database.Statement<[string, number, number, number]>;
  readonly deleteKv: Database.Statement<[string]>;
  /** (rev, key, deleted, value, create_rev, prev_rev, prev_id); its lastInsertRowid is the row's id. */
  readonly insertLog: Database.Statement<[number, string, number, Uint8Array, number, number, number]>;
  readonly getMeta: Database.Statement<[string], { value: number }>;
  readonly setMeta: Database.Statement<[number, string]>;
  /** The id of the first log row with rev > ?1, else max(id) + 1: where compaction to ?1 stops. */
  readonly compactBound: Database.Statement<[number], { id: number }>;
  /** The id of the (?3 + 1)-th row with ?1 < id < ?2: the end of one compaction batch. */
  readonly nthIdBetween: Database.Statement<[number, number, number], { id: number }>;
  /**
   * Compaction of the rows @from < id <= @to with rev <= @rev: the versions they replaced or
   * deleted are superseded at or before @rev (compactSuperseded), and the deletes themselves go
   * too (compactTombstones). Run in this order, over every row up to the bound, they remove
   * exactly the rows no read at or after @rev needs.
   */
  readonly compactSuperseded: Database.Statement<{ from: number; to: number; rev: number }>;
  readonly compactTombstones: Database.Statement<{ from: number; to: number; rev: number }>;

  constructor(db: Database.Database) {
    this.getKv = db.prepare(`SELECT kv.key, ${KV_VALUE}, kv.create_rev, kv.mod_rev, kv.log_id FROM ${KV_FROM} WHERE kv.key = ?`);
    this.upsertKv = db.prepare(
      `INSERT INTO kv (key, value, create_rev, mod_rev, log_id) VALUES (?, X'', ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = X'', mod_rev = excluded.mod_rev, log_id = excluded.log_id`,
    );
    this.deleteKv = db.prepare("DELETE FROM kv WHERE key = ?");
    this.insertLog = db.prepare(
      "INSERT INTO log (rev, key, deleted, value, create_rev, prev_rev, prev_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.getMeta = db.prepare(GET_META);
    this.setMeta = db.prepare("UPDATE meta SET value = ? WHERE name = ?");
    this.compactBound = db.prepare(
      `SELECT coalesce((SELECT id FROM log WHERE rev > ? ORDER BY rev, id LIMIT 1), (SELECT max(id) FROM log) + 1, 1) AS id`,
    );
    this.nthIdBetween = db.prepare("SELECT id FROM log WHERE id > ? AND id < ? ORDER BY id LIMIT 1 OFFSET ?");
    this.compactSuperseded = db.prepare(
      `DELETE FROM log WHERE id IN (
         SELECT prev_id FROM log WHERE id > @from AND id <= @to AND rev <= @rev AND prev_id > 0)`,
    );
    this.compactTombstones = db.prepare("DELETE FROM log WHERE id > @from AND id <= @to AND rev <= @rev AND deleted = 1");
  }
}

/** What the store's read connection runs: gets, lists (at head and in the past), history for watches. */
export class ReadStatements {
  readonly getKv: Database.Statement<[string], KvRow>;
  readonly getMeta: Database.Statement<[string], { value: number }>;
  readonly ping: Database.Statement<[], { one: number }>;

  private readonly headList = new Map<Variant, Database.Statement<[RangeParams], KvRow>>();
  private readonly pastHead = new Map<Variant, Database.Statement<[RangeParams], LoggedKvRow>>();
  private readonly deletesSince = new Map<Variant, Database.Statement<[Omit<RangeParams, "limit"> & { rev: number }], { key: string; id: number }>>();
  private readonly logRow: Database.Statement<[number], HistoryRow>;
  private readonly history = new Map<
    Variant,
    Database.Statement<[RangeParams & { after: number; until: number }], LogRow>
  >();

  constructor(private readonly db: Database.Database) {
    this.getKv = db.prepare(GET_KV);
    this.getMeta = db.prepare(GET_META);
    this.ping = db.prepare("SELECT 1 AS one");
    this.logRow = db.prepare("SELECT rev, deleted, value, create_rev, prev_id FROM log WHERE id = ?");
  }

  /** Live keys in a range, ascending, at most `limit` (-1: all). */
  listHead(r: KeyRange, limit: number): KvRow[] {
    const v = variant(r);
    let stmt = this.headList.get(v);
    if (!stmt) {
      stmt = this.db.prepare(
        `SELECT kv.key, ${KV_VALUE}, kv.create_rev, kv.mod_rev FROM ${KV_FROM} WHERE ${rangeSql("kv.key", v)} ORDER BY kv.key LIMIT @limit`,
      );
      this.headList.set(v, stmt);
    }
    return stmt.all(params(r, limit));
  }

  /**
   * Keys in a range as of revision `rev`: the live keys in order, each changed since `rev` (its
   * mod_rev is later, or it was deleted since) walked back along its history chain (prev_id) to
   * the version it had then, merged with the keys deleted since (an index of deletes only). The
   * cost is the keys returned plus the versions written since `rev` of those keys: a paged list
   * at a pinned revision pays nothing for writes to other keys, however many.
   */
  listPast(r: KeyRange, rev: number, limit: number): KvRow[] {
    const v = variant(r);
    let deletes = this.deletesSince.get(v);
    if (!deletes) {
      deletes = this.db.prepare(
        `SELECT key, min(id) AS id FROM log INDEXED BY log_deletes
         WHERE deleted = 1 AND rev > @rev AND ${rangeSql("key", v)} GROUP BY key ORDER BY key`,
      );
      this.deletesSince.set(v, deletes);
    }
    // Per key deleted since `rev`: its first delete after it (where its walk back starts).
    const deleted = deletes.all({ ...rangeParams(r), rev });
    const firstDelete = new Map(deleted.map((d) => [d.key, d.id]));
    const out: KvRow[] = [];
    const full = (): boolean => limit >= 0 && out.length >= limit;
    const take = (key: string, start: number): void => {
      const then = this.versionAt(key, start, rev);
      if (then) out.push(then);
    };
    let d = 0;
    let after: KeyRange = r;
    for (;;) {
      const want = limit < 0 ? -1 : Math.max(limit - out.length, 64);
      const chunk = this.liveRows(after, want);
      for (const row of chunk) {
        // Keys deleted since and not live now come in their place in the order.
        while (d < deleted.length && byteLess(deleted[d]!.key, row.key) && !full()) take(deleted[d]!.key, deleted[d++]!.id);
        if (full()) return out;
        const del = firstDelete.get(row.key);
        if (del !== undefined) {
          d++; // re-created since: its first delete is where its walk starts
          take(row.key, del);
        } else if (row.mod_rev > rev) take(row.key, row.log_id);
        else out.push({ key: row.key, value: row.value, create_rev: row.create_rev, mod_rev: row.mod_rev });
        if (full()) return out;
      }
      if (want < 0 || chunk.length < want) break;
      after = { lo: chunk.at(-1)!.key, inclusive: false, hi: r.hi };
    }
    while (d < deleted.length && !full()) take(deleted[d]!.key, deleted[d++]!.id);
    return out;
  }

  /** Live rows from a range's start, ascending, at most `limit` (-1: all), with the history row of each. */
  private liveRows(r: KeyRange, limit: number): LoggedKvRow[] {
    const v = variant(r);
    let stmt = this.pastHead.get(v);
    if (!stmt) {
      stmt = this.db.prepare(
        `SELECT kv.key, ${KV_VALUE}, kv.create_rev, kv.mod_rev, kv.log_id FROM ${KV_FROM} WHERE ${rangeSql("kv.key", v)} ORDER BY kv.key LIMIT @limit`,
      );
      this.pastHead.set(v, stmt);
    }
    return stmt.all(params(r, limit));
  }

  /**
   * The version `key` had at `rev`, from a history row written after `rev` (its latest version,
   * or its first delete since): back along prev_id to the first version at or before `rev`;
   * undefined if the walk reaches its creation after `rev` (it did not exist then).
   */
  private versionAt(key: string, startId: number, rev: number): KvRow | undefined {
    let id = startId;
    for (;;) {
      const row = this.logRow.get(id);
      if (!row) throw new Error(`the history of ${key} is broken: row ${id} is missing (reached from row ${startId})`);
      if (row.rev <= rev) return row.deleted === 1 ? undefined : { key, value: row.value, create_rev: row.create_rev, mod_rev: row.rev };
      if (row.prev_id === 0) return undefined;
      id = row.prev_id;
    }
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
         LEFT JOIN log AS p ON l.deleted = 0 AND l.prev_id > 0 AND p.id = l.prev_id
         WHERE l.rev > @after AND l.rev <= @until AND ${rangeSql("l.key", v)}
         ORDER BY l.rev, l.id LIMIT @limit`,
      );
      this.history.set(v, stmt);
    }
    return stmt.all({ ...params(r, limit), after, until });
  }
}

/**
 * `a` sorts before `b` in SQLite's order of TEXT keys (their UTF-8 bytes, i.e. code points). JS's
 * `<` compares UTF-16 units, which puts U+E000–U+FFFF after the surrogate pairs of U+10000 and up:
 * remapping the first differing unit fixes that.
 */
function byteLess(a: string, b: string): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) < codePointRank(y);
  }
  return a.length < b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

function params(r: KeyRange, limit: number): RangeParams {
  return { ...rangeParams(r), limit };
}

function rangeParams(r: KeyRange): Omit<RangeParams, "limit"> {
  return r.hi === undefined ? { lo: r.lo } : { lo: r.lo, hi: r.hi };
}
