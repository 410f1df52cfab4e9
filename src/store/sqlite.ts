/**
 * SqliteStore: the Store contract (store.ts) on one SQLite file, for a single server process.
 *
 * One writer: this process owns the revision counter in memory and writes it to `meta` in
 * the same SQLite transaction as the changes and their history rows, so revision and events
 * never disagree (no kine-style poll loop or fill rows). Each commit checks that `meta` still
 * holds the revision this process last wrote: a second process writing the same file makes
 * the first one's writes fail with UnavailableError instead of forking the history.
 *
 * Group commit: `txn()` queues; one event-loop turn later every queued transaction (up to
 * `maxBatch`) is applied in one SQLite transaction, each evaluated against the state that
 * includes the earlier ones, and committed with one fsync (synchronous=FULL, WAL). Promises
 * resolve and watchers hear of the changes only after that commit. If it fails, every
 * transaction of the batch rejects with UnavailableError and nothing of it is visible.
 *
 * better-sqlite3 is synchronous, so every method runs start to finish without another one
 * interleaving; that is what makes the reads below consistent without snapshots.
 *
 * Where store.ts leaves room, this backend does what etcd does (so both pass one suite): a
 * txn changing a key twice is refused with InvalidError; list revision 0 means current;
 * compacting to a future revision is InvalidError; a delete event's kv carries only key and
 * revision (createRevision 0); a watch may start from a future revision. Values are not
 * copied: results, reads and events share the caller's bytes, which nobody may modify.
 */
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { CompactedError, NodeplaneError, UnavailableError } from "../errors.js";
import { compareKeys, futureRevision, prefixEnd, validateRevision, validateTxn } from "./keys.js";
import { type KeyRange, type LogRow, SCHEMA, SCHEMA_VERSION, Statements, toKeyValue } from "./sqlite-sql.js";
import type {
  KeyValue,
  ListOptions,
  ListResult,
  Store,
  StoreWatch,
  TxnRequest,
  TxnResult,
  WatchEvent,
  WatchListener,
} from "./store.js";
import { messageOf, WatchHub } from "./watch-hub.js";

export interface SqliteStoreOptions {
  /** Directory of the database file `nodeplane.db`; created if missing. */
  dir: string;
  /** Most transactions committed together (default 2,000): bounds a batch's latency. */
  maxBatch?: number;
  /** Told of every group commit: how many transactions it carried and how long it took (s). */
  onCommit?: (transactions: number, seconds: number) => void;
  /** History rows `compact()` examines per SQLite transaction before yielding (default 10,000). */
  compactBatchRows?: number;
  /** History rows a watch reads per event-loop turn while catching up (default 1,000). */
  historyPageSize?: number;
  /** How long a write waits for a lock another connection holds, ms (default 5,000). */
  busyTimeoutMs?: number;
}

interface Queued {
  req: TxnRequest;
  resolve(res: TxnResult): void;
  reject(err: Error): void;
}

interface Applied {
  revision: number;
  results: TxnResult[];
  events: WatchEvent[];
}

const EMPTY = new Uint8Array(0);
const DB_FILE = "nodeplane.db";

export class SqliteStore implements Store {
  private rev: number;
  private compactRev: number;
  private queue: Queued[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Compactions run one at a time, in call order. */
  private compactions: Promise<unknown> = Promise.resolve();
  private readonly hub: WatchHub;
  private readonly applyBatch: (batch: Queued[]) => Applied;
  private readonly maxBatch: number;
  private readonly onCommit: ((transactions: number, seconds: number) => void) | undefined;
  private readonly compactBatchRows: number;

  private constructor(
    private readonly db: Database.Database,
    private readonly sql: Statements,
    private readonly file: string,
    opts: SqliteStoreOptions,
  ) {
    this.rev = sql.getMeta.get("revision")!.value;
    this.compactRev = sql.getMeta.get("compact_revision")!.value;
    this.maxBatch = opts.maxBatch ?? 2000;
    this.onCommit = opts.onCommit;
    this.compactBatchRows = opts.compactBatchRows ?? 10_000;
    this.applyBatch = db.transaction((batch: Queued[]) => this.applyAll(batch));
    this.hub = new WatchHub(
      {
        currentRevision: () => this.rev,
        compactRevision: () => this.compactRev,
        readHistory: (prefix, after, until, limit) =>
          this.sql.readHistory(prefixRange(prefix), after, until, limit).map(toEvent),
      },
      opts.historyPageSize ?? 1000,
    );
  }

  /** Open (or create) the store in `opts.dir`. Fails with UnavailableError. */
  static async open(opts: SqliteStoreOptions): Promise<SqliteStore> {
    const file = path.join(opts.dir, DB_FILE);
    let db: Database.Database | undefined;
    try {
      fs.mkdirSync(opts.dir, { recursive: true });
      db = new Database(file, { timeout: opts.busyTimeoutMs ?? 5000 });
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, WAL is required`);
      db.pragma("synchronous = FULL");
      db.exec(SCHEMA);
      const sql = new Statements(db);
      const version = sql.getMeta.get("schema_version")!.value;
      if (version !== SCHEMA_VERSION) {
        throw new Error(`schema version ${version} is not ${SCHEMA_VERSION}; was it written by another nodeplane version?`);
      }
      return new SqliteStore(db, sql, file, opts);
    } catch (err) {
      db?.close();
      throw new UnavailableError(`cannot open the SQLite store ${file}: ${messageOf(err)}`);
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    return this.driver("get", () => this.readKv(key));
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    const head = this.rev;
    // 0 means "current", as in etcd, so a backend-neutral caller can pass either.
    const at = opts.revision === undefined || opts.revision === 0 ? head : opts.revision;
    const limit = opts.limit ?? 0;
    const invalid = validateRevision("revision", at) ?? validateRevision("limit", limit);
    if (invalid) throw invalid;
    if (at > head) throw futureRevision("revision", at, head);
    if (at < this.compactRev) throw new CompactedError(at, this.compactRev);
    const range = prefixRange(prefix, opts.startAfter);
    const fetch = limit > 0 ? limit + 1 : -1;
    const rows = this.driver("list", () =>
      at === head ? this.sql.listHead(range, fetch) : this.sql.listPast(range, at, fetch),
    );
    const more = limit > 0 && rows.length > limit;
    if (more) rows.length = limit;
    return { kvs: rows.map(toKeyValue), revision: at, more };
  }

  txn(req: TxnRequest): Promise<TxnResult> {
    if (this.closed) return Promise.reject(closedError());
    const invalid = validateTxn(req);
    if (invalid) return Promise.reject(invalid);
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.flushTimer ??= setImmediate(this.onFlushTimer);
    });
  }

  watch(prefix: string, afterRevision: number, listener: WatchListener): StoreWatch {
    const invalid = validateRevision("afterRevision", afterRevision);
    if (invalid) {
      setImmediate(() => listener.onError(invalid));
      return { cancel: () => {} };
    }
    return this.hub.watch(prefix, afterRevision, listener);
  }

  compact(revision: number): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    const invalid = validateRevision("revision", revision);
    if (invalid) return Promise.reject(invalid);
    const run = this.compactions.then(() => this.runCompaction(revision));
    this.compactions = run.catch(() => undefined);
    return run;
  }

  async currentRevision(): Promise<number> {
    this.assertOpen();
    return this.rev;
  }

  async compactRevision(): Promise<number> {
    this.assertOpen();
    return this.compactRev;
  }

  async ping(): Promise<void> {
    this.assertOpen();
    this.driver("ping", () => this.sql.ping.get());
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    // Leave the caller's stack first: watch listeners are never called from inside it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    while (this.queue.length > 0) this.flush();
    this.hub.closeAll(closedError());
    this.db.close();
  }

  private readonly onFlushTimer = (): void => {
    this.flushTimer = undefined;
    this.flush();
    if (this.queue.length > 0) this.flushTimer = setImmediate(this.onFlushTimer);
  };

  /** Commit one batch, then settle its promises and tell the watchers. */
  private flush(): void {
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(this.maxBatch);
    let applied: Applied;
    const started = performance.now();
    try {
      applied = this.applyBatch(batch);
      this.onCommit?.(batch.length, (performance.now() - started) / 1000);
    } catch (err) {
      // The SQLite transaction rolled back and this.rev was never advanced: as if the batch never ran.
      // Our own refusals (a second writer) say what to do; driver failures stay in the log.
      const why = err instanceof NodeplaneError ? `: ${err.message}` : "; retry";
      const e = new UnavailableError(
        `storage unavailable: committing ${batch.length} transaction(s) failed, none applied${why}`,
        { cause: new Error(`SQLite store ${this.file}: ${messageOf(err)}`) },
      );
      for (const q of batch) q.reject(e);
      return;
    }
    const before = this.rev;
    this.rev = applied.revision;
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(applied.results[i]!);
    if (applied.revision > before) this.hub.publish(applied.events, applied.revision);
  }

  /** Runs inside the SQLite transaction; throwing rolls the whole batch back. */
  private applyAll(batch: Queued[]): Applied {
    const onDisk = this.sql.getMeta.get("revision")!.value;
    if (onDisk !== this.rev) {
      throw new UnavailableError(
        `the file holds revision ${onDisk} but this process wrote ${this.rev}: another process is writing to it; run one server per data directory`,
      );
    }
    const events: WatchEvent[] = [];
    const collect = this.hub.hasLiveWatchers;
    let rev = this.rev;
    const results: TxnResult[] = [];
    for (const q of batch) {
      const res = this.applyOne(q.req, rev, collect ? events : undefined);
      if (res.succeeded) rev = res.revision;
      results.push(res);
    }
    if (rev !== this.rev) this.sql.setMeta.run(rev, "revision");
    return { revision: rev, results, events };
  }

  private applyOne(req: TxnRequest, rev: number, events: WatchEvent[] | undefined): TxnResult {
    let holds = true;
    const current: (KeyValue | undefined)[] = [];
    for (const c of req.compare) {
      const kv = this.readKv(c.key);
      current.push(kv);
      if ((kv?.modRevision ?? 0) !== c.modRevision) holds = false;
    }
    if (!holds) return { succeeded: false, revision: rev, current };
    const next = rev + 1;
    let changed = false;
    const results: (KeyValue | undefined)[] = [];
    for (const op of req.ops) {
      const prev = this.readKv(op.key);
      if (op.type === "put") {
        const createRevision = prev ? prev.createRevision : next;
        const kv: KeyValue = { key: op.key, value: op.value, createRevision, modRevision: next };
        this.sql.upsertKv.run(op.key, op.value, createRevision, next);
        this.sql.insertLog.run(next, op.key, 0, op.value, createRevision, prev ? prev.modRevision : 0);
        results.push(kv);
        events?.push(prev ? { type: "put", kv, prev } : { type: "put", kv });
        changed = true;
      } else if (prev) {
        this.sql.deleteKv.run(op.key);
        this.sql.insertLog.run(next, op.key, 1, prev.value, prev.createRevision, prev.modRevision);
        results.push(prev);
        events?.push({ type: "delete", kv: tombstone(op.key, next), prev });
        changed = true;
      } else {
        results.push(undefined);
      }
    }
    return { succeeded: true, revision: changed ? next : rev, results };
  }

  private readKv(key: string): KeyValue | undefined {
    const row = this.sql.getKv.get(key);
    return row && toKeyValue(row);
  }

  /**
   * Record the compact revision first, then delete in batches. Recording first means no read
   * or watch below `revision` can run against a history that is already partly deleted; if
   * the process stops half-way, the rows left over are removed by the next compaction.
   */
  private async runCompaction(revision: number): Promise<void> {
    this.assertOpen();
    if (revision > this.rev) throw futureRevision("revision", revision, this.rev);
    if (revision <= this.compactRev) return;
    this.driver("compact", () => this.sql.setMeta.run(revision, "compact_revision"));
    this.compactRev = revision;
    // Rows with rev <= revision are exactly the rows with id < bound (ids follow revisions);
    // rows written while this runs come after it.
    const bound = this.driver("compact", () => this.sql.compactBound.get(revision)!.id);
    let from = 0;
    for (;;) {
      const end = this.driver("compact", () => {
        const last = this.sql.nthIdBetween.get(from, bound, this.compactBatchRows - 1)?.id ?? bound - 1;
        this.sql.compactRange.run({ from, to: last, rev: revision });
        return last;
      });
      if (end >= bound - 1) return;
      from = end;
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.assertOpen();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }

  /** Run a driver call; its errors become UnavailableError naming the operation. */
  private driver<T>(what: string, call: () => T): T {
    try {
      return call();
    } catch (err) {
      if (err instanceof NodeplaneError) throw err;
      throw new UnavailableError(`storage unavailable: ${what} failed; retry`, {
        cause: new Error(`SQLite store ${this.file}: ${messageOf(err)}`),
      });
    }
  }
}

function closedError(): UnavailableError {
  return new UnavailableError("store is closed");
}

function tombstone(key: string, revision: number): KeyValue {
  // As etcd's delete event: key and revision only.
  return { key, value: EMPTY, createRevision: 0, modRevision: revision };
}

/** The keys under `prefix`, after `startAfter` if that is further on. */
function prefixRange(prefix: string, startAfter?: string): KeyRange {
  const hi = prefixEnd(prefix);
  if (startAfter !== undefined && compareKeys(startAfter, prefix) >= 0) return { lo: startAfter, inclusive: false, hi };
  return { lo: prefix, inclusive: true, hi };
}

function toEvent(row: LogRow): WatchEvent {
  if (row.deleted) {
    return {
      type: "delete",
      kv: tombstone(row.key, row.rev),
      prev: { key: row.key, value: row.value, createRevision: row.create_rev, modRevision: row.prev_rev },
    };
  }
  const kv: KeyValue = { key: row.key, value: row.value, createRevision: row.create_rev, modRevision: row.rev };
  if (row.prev_value === null) return { type: "put", kv };
  const prev: KeyValue = { key: row.key, value: row.prev_value, createRevision: row.prev_create_rev!, modRevision: row.prev_rev };
  return { type: "put", kv, prev };
}
