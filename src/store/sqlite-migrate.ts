/**
 * Schema 1 → 2 of the SQLite store (sqlite-sql.ts says what each holds), in one SQLite
 * transaction: a crash half-way leaves schema 1 whole, and the next start migrates again.
 *
 * - Every history row gets `prev_id`, the row of the version it replaced or deleted, found
 *   through schema 1's (key, rev) index while it still exists (0 when that row was compacted
 *   away: only rows at or below the compact revision, which no read reaches, can lack it).
 * - `kv` is rebuilt clustered by key, each row with `log_id`, the history row that wrote it.
 * - The (key, rev) index is dropped, `log_rev` on (rev) becomes (rev, key), and `log_deletes`
 *   indexes the deletes.
 *
 * The schema 2 tables are spelled out here as schema 2 first defined them, not taken from
 * sqlite-sql.ts: a later schema must not change what this step produced.
 *
 * It costs one index lookup per history row and a rewrite of `kv`: seconds for 100,000 nodes
 * with a few million history rows, once.
 */
import type Database from "better-sqlite3";

const TO_V2 = `
ALTER TABLE log ADD COLUMN prev_id INTEGER NOT NULL DEFAULT 0;
UPDATE log SET prev_id = coalesce(
  (SELECT p.id FROM log AS p WHERE p.key = log.key AND p.rev = log.prev_rev), 0)
  WHERE prev_rev > 0;
CREATE TABLE kv_v2 (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL,
  log_id INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO kv_v2 (key, value, create_rev, mod_rev, log_id)
  SELECT kv.key, kv.value, kv.create_rev, kv.mod_rev,
         coalesce((SELECT l.id FROM log AS l WHERE l.key = kv.key AND l.rev = kv.mod_rev), 0)
  FROM kv ORDER BY kv.key;
DROP TABLE kv;
ALTER TABLE kv_v2 RENAME TO kv;
DROP INDEX log_key_rev;
DROP INDEX log_rev;
CREATE INDEX log_rev ON log (rev, key);
CREATE INDEX log_deletes ON log (rev, key) WHERE deleted = 1;
UPDATE meta SET value = 2 WHERE name = 'schema_version';
`;

/** Migrate a schema 1 store file to schema 2 (the caller has read its version: 1). */
export function migrate(db: Database.Database): void {
  db.transaction(() => db.exec(TO_V2))();
}
