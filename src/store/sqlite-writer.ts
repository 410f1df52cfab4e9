/**
 * The writing half of SqliteStore (sqlite.ts): the only connection that changes the file. It
 * applies batches of transactions, each batch one SQLite transaction committed with one fsync
 * (WAL, synchronous=FULL), and runs the steps of a compaction. It normally runs in the store's
 * writer thread (sqlite-writer-thread.ts); `writerThread: false` runs it on the store's own
 * thread instead (the design before the thread, kept for comparison in bench/store-micro.ts).
 *
 * It talks in plain structured-cloneable messages, one WriterReply per WriterRequest, in
 * order, and knows nothing of promises, watchers or error classes: sqlite.ts turns its replies
 * into results, events and src/errors.ts errors.
 *
 * It owns the revision counter and writes it to `meta` in the same SQLite transaction as the
 * changes and their history rows, so revision and events never disagree. Each batch first
 * checks that `meta` still holds the revision this writer last wrote: a second process writing
 * the same file makes this one's batches fail (`refused`) instead of forking the history.
 *
 * Inside a transaction a key is read once: the version a compare read is the version its put
 * or delete replaces (a txn changes each key at most once, and compares are read before any op).
 */
import Database from "better-sqlite3";
import { migrate } from "./sqlite-migrate.js";
import { SCHEMA_VERSION, valueOf, WriteStatements, type LoggedKvRow } from "./sqlite-sql.js";
import type { Op, TxnRequest } from "./store.js";

/** A stored version of the key a compare or op names: its value, createRevision and modRevision. */
export type Version = [value: Uint8Array, createRevision: number, modRevision: number];

export type TxnOutcome =
  /** Per op, the version it replaced (put) or deleted (delete), null if there was none. */
  | { succeeded: true; revision: number; prev: (Version | null)[] }
  /** Per compare, the key's current version. */
  | { succeeded: false; revision: number; current: (Version | null)[] };

export type WriterRequest =
  | { type: "batch"; txns: TxnRequest[] }
  /** Record the compact revision; answers where its deletion steps stop. */
  | { type: "compact-begin"; revision: number }
  /** Delete what compaction to `revision` discards among at most `rows` history rows after `from`. */
  | { type: "compact-step"; revision: number; from: number; bound: number; rows: number }
  /** Commit a tiny real write (the revision row, unchanged): can the store write again after SQLITE_FULL? */
  | { type: "probe" }
  /** PRAGMA quick_check of the whole file; the store sends it first and writes nothing before its answer. */
  | { type: "check" }
  | { type: "close" };

/** The file had an older schema, migrated as the writer opened it: from that version, taking seconds (its check included). */
export interface Migration {
  from: number;
  seconds: number;
}

export type WriterReply =
  | { type: "ready"; revision: number; compactRevision: number; migrated?: Migration }
  /** `seconds`: applying and committing the batch, fsync included. */
  | { type: "batch"; revision: number; outcomes: TxnOutcome[]; seconds: number }
  | { type: "compact-begin"; bound: number }
  | { type: "compact-step"; end: number }
  | { type: "probe" }
  /**
   * The file passed its check (a damaged one answers `failed` with `refused`); `raisedFrom`: the
   * schema it had, when the check then moved it to the current one (2 → 3).
   */
  | { type: "check"; seconds: number; raisedFrom?: number }
  | { type: "closed" }
  /**
   * Nothing of the request was applied. `refused`: our own refusal (a second writer, a file that
   * failed its check), not a driver error. `code`: the driver's error code (SQLITE_FULL…), if any.
   */
  | { type: "failed"; message: string; refused: boolean; code?: string };

export interface WriterConfig {
  /** An existing store file (sqlite-files.ts creates new ones); it is checked before any write. */
  file: string;
  /** How long a write waits for a lock another connection holds, ms. */
  busyTimeoutMs: number;
}

/**
 * Called before each request is applied (inline writer only; tests use it to inject driver
 * errors such as SQLITE_FULL at the store's edge). Throwing fails the request as a driver error would.
 */
export type FaultInjector = (req: WriterRequest) => void;

/** A refusal of our own, as opposed to an error of the driver. */
class Refusal extends Error {}

/** The `failed` reply for an error (thrown while opening or answering a request). */
export function failedReply(err: unknown): WriterReply {
  const code = (err as { code?: unknown } | null)?.code;
  return {
    type: "failed",
    message: err instanceof Error ? err.message : String(err),
    refused: err instanceof Refusal,
    ...(typeof code === "string" ? { code } : {}),
  };
}

/**
 * PRAGMA quick_check: every page and b-tree, without cross-checking indexes against tables
 * (3.8–5.6 s for the 850 MB schema 2 file of 100,000 realistic nodes on a loaded 2-core machine, so it
 * runs while the server already answers reads: see SqliteStore.checked).
 */
function checkIntegrity(db: Database.Database, file: string): void {
  let problems: string[];
  try {
    problems = (db.pragma("quick_check(5)") as { quick_check: string }[]).map((r) => r.quick_check);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB") problems = [err instanceof Error ? err.message : String(err)];
    else throw err;
  }
  if (problems.length !== 1 || problems[0] !== "ok") {
    const lines = problems.flatMap((p) => p.split("\n")).filter((l) => l !== "" && !l.startsWith("*** in database"));
    throw new Refusal(`the SQLite store ${file} failed its integrity check (PRAGMA quick_check: ${lines.slice(0, 3).join("; ")}): it is damaged, and nothing was written to it`);
  }
}

/** The schema's presence, before anything else reads or writes (a cheap look at the catalogue). */
function checkSchema(db: Database.Database, file: string): void {
  const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('kv', 'log', 'meta')").get() as { n: number };
  if (tables.n !== 3) {
    throw new Refusal(`the SQLite store ${file} holds no nodeplane store (its kv, log and meta tables are missing): it was emptied or replaced, and nothing was written to it`);
  }
}

interface Opened {
  migrated?: Migration;
  checkedSeconds?: number;
  schema2?: boolean;
}

interface Applied {
  revision: number;
  outcomes: TxnOutcome[];
}

export class Writer {
  private rev: number;
  private readonly applyBatch: (txns: TxnRequest[]) => Applied;
  /** The history row of each version read in the current batch (a change names it as prev_id). */
  private readonly logIds = new WeakMap<Version, number>();

  private constructor(
    private readonly db: Database.Database,
    private readonly sql: WriteStatements,
    private readonly fault: FaultInjector | undefined,
    /**
     * What opening did besides: a migration, and the check made before it (seconds); `schema2`:
     * a schema 2 file, moved to 3 once its check passes (the `check` request), never written before.
     */
    private readonly opened: Opened,
  ) {
    this.rev = sql.getMeta.get("revision")!.value;
    this.applyBatch = db.transaction((txns: TxnRequest[]) => this.applyAll(txns));
  }

  /**
   * Open an existing store file (sqlite-files.ts creates new ones, with the schema) in WAL mode,
   * writing nothing: a file without the schema is refused (a Refusal). Its full check is the
   * `check` request, which the store sends first. Throws plain driver errors otherwise.
   */
  static open(config: WriterConfig, fault?: FaultInjector): Writer {
    const db = new Database(config.file, { timeout: config.busyTimeoutMs, fileMustExist: true });
    try {
      checkSchema(db, config.file);
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, WAL is required`);
      db.pragma("synchronous = FULL");
      const version = (db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").get() as { value: number } | undefined)?.value;
      const opened: Opened = {};
      if (version === 1) {
        // An older file: checked whole first (as every file is before its first write), then migrated.
        const started = performance.now();
        checkIntegrity(db, config.file);
        opened.checkedSeconds = (performance.now() - started) / 1000;
        migrate(db, 1);
        opened.migrated = { from: version, seconds: (performance.now() - started) / 1000 };
      } else if (version === 2) {
        // Read as it is; its version moves to 3 after its check (the store's first request), as it
        // would be written: nothing is written to a file before its check.
        opened.schema2 = true;
      } else if (version !== SCHEMA_VERSION) {
        throw new Refusal(`the SQLite store ${config.file} has schema version ${version}, not ${SCHEMA_VERSION}: it was written by a newer nodeplane; nothing was written to it`);
      }
      return new Writer(db, new WriteStatements(db), fault, opened);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  ready(): WriterReply {
    const compactRevision = this.sql.getMeta.get("compact_revision")!.value;
    const migrated = this.opened.migrated;
    return { type: "ready", revision: this.rev, compactRevision, ...(migrated ? { migrated } : {}) };
  }

  /** Answer one request. Never throws: a failure is a `failed` reply, and nothing of the request was applied. */
  handle(req: WriterRequest): WriterReply {
    try {
      this.fault?.(req);
      switch (req.type) {
        case "batch": {
          const started = performance.now();
          // On a throw the SQLite transaction rolled back and this.rev was never advanced.
          const applied = this.applyBatch(req.txns);
          this.rev = applied.revision;
          return { type: "batch", revision: applied.revision, outcomes: applied.outcomes, seconds: (performance.now() - started) / 1000 };
        }
        case "compact-begin":
          if (req.revision > this.rev) throw new Refusal(`compact revision ${req.revision} is past the writer's revision ${this.rev}`);
          this.sql.setMeta.run(req.revision, "compact_revision");
          // Rows with rev <= revision are exactly the rows with id < bound (ids follow revisions);
          // rows written after this come after it.
          return { type: "compact-begin", bound: this.sql.compactBound.get(req.revision)!.id };
        case "compact-step": {
          const last = this.sql.nthIdBetween.get(req.from, req.bound, req.rows - 1)?.id ?? req.bound - 1;
          const step = { from: req.from, to: last, rev: req.revision };
          this.db.transaction(() => {
            this.sql.compactSuperseded.run(step);
            this.sql.compactTombstones.run(step);
          })();
          return { type: "compact-step", end: last };
        }
        case "probe":
          this.sql.setMeta.run(this.rev, "revision");
          return { type: "probe" };
        case "check": {
          // A migrated file was checked whole just before its migration: not read through again.
          if (this.opened.checkedSeconds !== undefined) return { type: "check", seconds: this.opened.checkedSeconds };
          const started = performance.now();
          checkIntegrity(this.db, this.db.name);
          const seconds = (performance.now() - started) / 1000;
          if (!this.opened.schema2) return { type: "check", seconds };
          migrate(this.db, 2);
          this.opened.schema2 = false;
          return { type: "check", seconds, raisedFrom: 2 };
        }
        case "close":
          this.db.close();
          return { type: "closed" };
      }
    } catch (err) {
      return failedReply(err);
    }
  }

  /** Runs inside the SQLite transaction; throwing rolls the whole batch back. */
  private applyAll(txns: TxnRequest[]): Applied {
    if (this.opened.schema2) throw new Refusal("a schema 2 file is written only after its check (the store's first request)");
    const onDisk = this.sql.getMeta.get("revision")!.value;
    if (onDisk !== this.rev) {
      throw new Refusal(
        `the file holds revision ${onDisk} but this process wrote ${this.rev}: another process is writing to it; run one server per data directory`,
      );
    }
    let rev = this.rev;
    const outcomes: TxnOutcome[] = [];
    for (const req of txns) {
      const outcome = this.applyOne(req, rev);
      if (outcome.succeeded) rev = outcome.revision;
      outcomes.push(outcome);
    }
    if (rev !== this.rev) this.sql.setMeta.run(rev, "revision");
    return { revision: rev, outcomes };
  }

  private applyOne(req: TxnRequest, rev: number): TxnOutcome {
    let holds = true;
    const current: (Version | null)[] = [];
    for (const c of req.compare) {
      const v = this.read(c.key);
      current.push(v);
      if ((v?.[2] ?? 0) !== c.modRevision) holds = false;
    }
    if (!holds) return { succeeded: false, revision: rev, current };
    const next = rev + 1;
    let changed = false;
    const prevs: (Version | null)[] = [];
    for (const op of req.ops) {
      const prev = this.replaced(req, current, op);
      const prevId = prev ? this.logIds.get(prev)! : 0;
      if (op.type === "put") {
        const createRevision = prev ? prev[1] : next;
        const logged = this.sql.insertLog.run(next, op.key, 0, op.value, createRevision, prev ? prev[2] : 0, prevId);
        this.sql.upsertKv.run(op.key, createRevision, next, Number(logged.lastInsertRowid));
        changed = true;
      } else if (prev) {
        this.sql.deleteKv.run(op.key);
        this.sql.insertLog.run(next, op.key, 1, prev[0], prev[1], prev[2], prevId);
        changed = true;
      }
      prevs.push(prev);
    }
    return { succeeded: true, revision: changed ? next : rev, prev: prevs };
  }

  /** The version `op` replaces: what a compare of this txn read of its key, else a read. */
  private replaced(req: TxnRequest, current: (Version | null)[], op: Op): Version | null {
    for (let i = 0; i < req.compare.length; i++) if (req.compare[i]!.key === op.key) return current[i]!;
    return this.read(op.key);
  }

  private read(key: string): Version | null {
    const row: LoggedKvRow | undefined = this.sql.getKv.get(key);
    if (!row) return null;
    const version: Version = [valueOf(row), row.create_rev, row.mod_rev];
    this.logIds.set(version, row.log_id);
    return version;
  }
}
