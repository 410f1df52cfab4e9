/**
 * Schema 1 → 2 → 3 of the SQLite store (sqlite-sql.ts says what each holds), in one SQLite
 * transaction: a crash half-way leaves the file as it was, and the next start migrates again.
 *
 * 2 → 3 is the version number alone: schema 3 reads schema 2's rows as they are, and writes
 * each new version's value in its history row only (`kv.value` empty). The number keeps an
 * older nodeplane from reading such a file.
 *
 * 1 → 2:
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

const TO_V3 = "UPDATE meta SET value = 3 WHERE name = 'schema_version';";

/** Migrate a schema 1 or 2 store file to schema 3 (the caller has read its version, and checked the file). */
export function migrate(db: Database.Database, from: 1 | 2): void {
  db.transaction(() => {
    if (from === 1) db.exec(TO_V2);
    db.exec(TO_V3);
  })();
}
