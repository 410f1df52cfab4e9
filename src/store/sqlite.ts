/**
 * SqliteStore: the Store contract (store.ts) on one SQLite file, for a single server process.
 *
 * Two connections. Writes go to a Writer (sqlite-writer.ts) that runs in a worker thread of
 * its own with its own connection; reads (get, list, watch history) run on this thread's
 * read-only connection. better-sqlite3 is synchronous, and a durable commit blocks for the
 * fsync of the WAL: on this thread it stalled gRPC, protobuf and the registry for every group
 * commit (37-48% of the server's one JS thread in the lease benchmarks). In the writer thread
 * the apply and the fsync overlap with this thread's work, and a batch pipelines with the next:
 * while the writer commits batch N, batch N+1 accumulates here.
 *
 * Why not keep one connection and fsync asynchronously (synchronous=OFF, then fdatasync of
 * the WAL on libuv's pool)? That moves only the fsync off this thread, not the apply; and it
 * is hard to make exact: every read would have to wait for the fsync of the data it sees (with
 * one connection a read sees un-synced commits at once), and a checkpoint may copy un-synced
 * frames into the database and reuse the WAL, so checkpoints would need their own syncing. With
 * the writer thread, durability stays SQLite's own (synchronous=FULL): a commit becomes visible
 * to other connections only after its WAL frames are synced, so reads never see un-synced data.
 *
 * Group commit: `txn()` queues. When the writer is idle (one event-loop turn after the first
 * txn, or as soon as it answers the previous batch) every queued transaction, up to `maxBatch`,
 * goes to it as one batch: one SQLite transaction, each txn evaluated against the state that
 * includes the earlier ones, one fsync. Promises resolve and watchers hear of the changes only
 * when the writer has answered, that is after the commit, in revision order. If the commit
 * fails, every transaction of the batch rejects with UnavailableError and nothing of it is
 * visible. One request is out at a time; compaction steps take turns with batches.
 *
 * Revisions: the writer owns the counter (and the second-writer check, see sqlite-writer.ts);
 * this thread learns each batch's revision from its answer. The read connection may see a
 * commit a little before that answer is handled here; that is harmless (the commit is durable)
 * as long as every read reports a revision consistent with what it read: a list reads `meta`'s
 * revision in the same read transaction as its rows and answers with it, and currentRevision()
 * is never below a revision a list has answered. Watch history is read only up to the revision
 * whose events were published, so a watch turning live has no gap and no duplicate.
 *
 * If the writer thread dies, the store stops writing: the batch in flight rejects with
 * UnavailableError (its outcome unknown), and every later txn, compact and ping too; reads go
 * on. Restart the process.
 *
 * Damage and a full disk (issue 11): opening refuses an empty, missing-but-expected or foreign
 * file (sqlite-files.ts); the writer's first request is PRAGMA quick_check of the whole file, and
 * no write is sent before it passes (`checked`). A file that fails it, or a commit failing with
 * SQLITE_CORRUPT, stops all writing as a dead writer does. A commit failing with SQLITE_FULL
 * rejects its batch with ResourceExhaustedError ("disk full …"), and ping fails (probing with a
 * tiny write) until a write succeeds again.
 *
 * Where store.ts leaves room, this backend does what etcd does (so both pass one suite): a
 * txn changing a key twice is refused with InvalidError; list revision 0 means current;
 * compacting to a future revision is InvalidError; a delete event's kv carries only key and
 * revision (createRevision 0); a watch may start from a future revision. Put values are not
 * copied here: results and events share the caller's bytes, which nobody may modify.
 */
import fs from "node:fs";
import path from "node:path";
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { CompactedError, NodeplaneError, ResourceExhaustedError, UnavailableError } from "../errors.js";
import { compareKeys, futureRevision, prefixEnd, validateRevision, validateTxn } from "./keys.js";
import { type KeyRange, type KvRow, type LogRow, ReadStatements, toKeyValue } from "./sqlite-sql.js";
import type { FaultInjector, Migration, TxnOutcome, Version, WriterReply, WriterRequest } from "./sqlite-writer.js";
import { startWriter, type WriterLink, WriterStartError } from "./sqlite-writer-link.js";
import { DamagedStoreError, DB_FILE, prepareStoreFile, repairAdvice } from "./sqlite-files.js";
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
  /** Told of every group commit: how many transactions it carried and how long the writer took (s). */
  onCommit?: (transactions: number, seconds: number) => void;
  /** History rows `compact()` examines per SQLite transaction before yielding (default 10,000). */
  compactBatchRows?: number;
  /** History rows a watch reads per event-loop turn while catching up (default 1,000). */
  historyPageSize?: number;
  /** How long a write waits for a lock another connection holds, ms (default 5,000). */
  busyTimeoutMs?: number;
  /** Commit in a worker thread (default true); false commits on this thread, as before the thread existed. */
  writerThread?: boolean;
  /** Told of the writer thread once it is ready (tests use it to make the thread die). */
  onWriterThread?: (worker: Worker) => void;
  /** With `writerThread: false` only: called before each writer request (tests inject driver errors). */
  faultInjector?: FaultInjector;
}

interface Queued {
  req: TxnRequest;
  resolve(res: TxnResult): void;
  reject(err: Error): void;
}

/** The request the writer is working on: what to do with its reply, or if the writer dies first. */
interface InFlight {
  reply(reply: WriterReply): void;
  lost(err: UnavailableError): void;
}

/** A request other than a batch, waiting for its turn. */
interface Job extends InFlight {
  req: WriterRequest;
}

const EMPTY = new Uint8Array(0);

export class SqliteStore implements Store {
  /**
   * Settles once the writer has checked the whole file (PRAGMA quick_check, seconds on a large
   * store, so reads are answered meanwhile): resolves with its seconds if it passed; rejects with UnavailableError
   * naming the damage and the repair if not. No write is made before it passes, nor ever after a
   * failure (every write then fails with that error, and so does ping).
   */
  readonly checked: Promise<number>;
  /** Set when the file had an older schema and was migrated as it opened (src/store/sqlite-migrate.ts). */
  readonly migrated: Migration | undefined;
  /**
   * Set when the check (`checked`) moved the file from this older schema to the current one (2 → 3:
   * the version number alone); an older nodeplane refuses the file from then on.
   */
  schemaRaisedFrom: number | undefined;
  /** The revision whose events have been published. */
  private rev: number;
  /** The highest revision a read has answered with (at least `rev` once the writer's answer is handled). */
  private readRev = 0;
  private compactRev: number;
  private queue: Queued[] = [];
  private jobs: Job[] = [];
  private inFlight: InFlight | undefined;
  /** Half the last batch: a queue this long may go to an idle writer early (see overlapPays). */
  private eagerBatch = 1;
  /** Whether the last batch went early (see overlapPays) rather than at the end of a turn. */
  private sentEarly = false;
  /** How long the writer took for the last batch, and this thread's turn that handled its answer, s. */
  private commitSeconds = Infinity;
  private answerSeconds = 0;
  /** Whether the last request sent was a batch (compaction steps and batches take turns). */
  private lastWasBatch = false;
  private flushTimer: NodeJS.Immediate | undefined;
  private idleWaiters: (() => void)[] = [];
  /** Set when the writer has died or found the file damaged: writes fail with it from then on. */
  private failure: UnavailableError | undefined;
  /** Set when a commit failed with SQLITE_FULL, until one succeeds: ping() probes and fails meanwhile. */
  private diskFull: ResourceExhaustedError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Compactions run one at a time, in call order. */
  private compactions: Promise<unknown> = Promise.resolve();
  private readonly hub: WatchHub;
  private readonly listAt: (asked: number, range: KeyRange, fetch: number) => { at: number; rows: KvRow[] };
  private readonly maxBatch: number;
  private readonly onCommit: ((transactions: number, seconds: number) => void) | undefined;
  private readonly compactBatchRows: number;

  private constructor(
    private readonly db: Database.Database,
    private readonly sql: ReadStatements,
    private readonly writer: WriterLink,
    ready: { revision: number; compactRevision: number; migrated?: Migration },
    private readonly file: string,
    opts: SqliteStoreOptions,
  ) {
    this.rev = ready.revision;
    this.compactRev = ready.compactRevision;
    this.migrated = ready.migrated;
    this.maxBatch = opts.maxBatch ?? 2000;
    this.onCommit = opts.onCommit;
    this.compactBatchRows = opts.compactBatchRows ?? 10_000;
    this.listAt = db.transaction((asked: number, range: KeyRange, fetch: number) => this.readList(asked, range, fetch));
    this.hub = new WatchHub(
      {
        currentRevision: () => this.rev,
        compactRevision: () => this.compactRev,
        readHistory: (prefix, after, until, limit) =>
          this.sql.readHistory(prefixRange(prefix), after, until, limit).map(toEvent),
      },
      opts.historyPageSize ?? 1000,
    );
    writer.attach({ reply: this.onReply, stopped: (err) => this.writerStopped(err) });
    this.checked = this.check();
    this.checked.catch(() => {}); // whoever awaits it sees the error; every write fails with it too
  }

  /**
   * Open (or create) the store in `opts.dir`. A missing, empty, foreign or damaged file where a
   * store was expected is refused, never written (sqlite-files.ts). Fails with UnavailableError
   * whose message says what was found and how to repair it.
   */
  static async open(opts: SqliteStoreOptions): Promise<SqliteStore> {
    const file = path.join(opts.dir, DB_FILE);
    let writer: WriterLink | undefined;
    let db: Database.Database | undefined;
    try {
      fs.mkdirSync(opts.dir, { recursive: true });
      prepareStoreFile(opts.dir);
      // The writer checks the file before anything writes to it; then this thread's read connection opens it.
      const started = await startWriter(
        { file, busyTimeoutMs: opts.busyTimeoutMs ?? 5000 },
        opts.writerThread ?? true,
        opts.onWriterThread,
        opts.faultInjector,
      );
      writer = started.link;
      if (started.ready.type !== "ready") throw new Error(`the writer answered ${started.ready.type}`);
      db = new Database(file, { readonly: true, timeout: opts.busyTimeoutMs ?? 5000 });
      return new SqliteStore(db, new ReadStatements(db), writer, started.ready, file, opts);
    } catch (err) {
      db?.close();
      await writer?.close();
      if (err instanceof DamagedStoreError) throw new UnavailableError(`cannot open the store: ${err.message}`);
      if (err instanceof WriterStartError && err.refused) throw new UnavailableError(`cannot open the store: ${err.message}. To repair: ${repairAdvice(file)}`);
      throw new UnavailableError(`cannot open the SQLite store ${file}: ${messageOf(err)}`);
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    return this.driver("get", () => {
      const row = this.sql.getKv.get(key);
      // A commit can be visible here before its reply reached this thread: the revision a read
      // answered with must not be ahead of currentRevision() (a Watch from it would be "future").
      if (row && row.mod_rev > this.readRev) this.readRev = row.mod_rev;
      return row && toKeyValue(row);
    });
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    // 0 means "current", as in etcd, so a backend-neutral caller can pass either.
    const asked = opts.revision ?? 0;
    const limit = opts.limit ?? 0;
    const invalid = validateRevision("revision", asked) ?? validateRevision("limit", limit);
    if (invalid) throw invalid;
    const fetch = limit > 0 ? limit + 1 : -1;
    return this.driver("list", () => {
      const { at, rows } = this.listAt(asked, prefixRange(prefix, opts.startAfter), fetch);
      const more = limit > 0 && rows.length > limit;
      if (more) rows.length = limit;
      return { kvs: rows.map(toKeyValue), revision: at, more };
    });
  }

  txn(req: TxnRequest): Promise<TxnResult> {
    if (this.closed) return Promise.reject(closedError());
    if (this.failure) return Promise.reject(this.failure);
    const invalid = validateTxn(req);
    if (invalid) return Promise.reject(invalid);
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      if (this.inFlight) return;
      // The writer is idle: gather this turn's transactions first, or start on half a batch
      // now when that lets the writer work while this thread does (see overlapPays).
      if (this.queue.length >= this.eagerBatch && this.overlapPays()) this.pump(true);
      else this.flushTimer ??= setImmediate(this.onFlushTimer);
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
    return this.head();
  }

  async compactRevision(): Promise<number> {
    this.assertOpen();
    return this.compactRev;
  }

  /**
   * Reachable and able to write. After a commit failed for a full disk, each ping tries a tiny
   * real write and fails with ResourceExhaustedError ("disk full …") until one succeeds.
   */
  async ping(): Promise<void> {
    this.assertOpen();
    if (this.failure) throw this.failure;
    this.driver("ping", () => this.sql.ping.get());
    if (!this.diskFull) return;
    const reply = await this.request({ type: "probe" }).catch((err: unknown) => {
      throw this.failure ?? (err instanceof Error ? err : new Error(String(err)));
    });
    if (reply.type === "probe") this.diskFull = undefined;
    else if (reply.type === "failed" && reply.code === "SQLITE_FULL") throw this.diskFull;
    else throw new UnavailableError(`storage unavailable: a test write failed; retry`, {
      cause: new Error(`SQLite store ${this.file}: ${reply.type === "failed" ? reply.message : `unexpected ${reply.type}`}`),
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    // Leave the caller's stack first: watch listeners are never called from inside it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Finish what is queued and in flight (a compaction stops at its next step: closed).
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.pump();
    });
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    this.hub.closeAll(closedError());
    // The writer's connection closes last, so that it checkpoints the WAL into the file.
    this.db.close();
    await this.writer.close();
  }

  private head(): number {
    return Math.max(this.rev, this.readRev);
  }

  private readonly onFlushTimer = (): void => {
    this.flushTimer = undefined;
    this.pump();
  };

  /** If the writer is idle, send it the next request: a compaction step or a batch (taking turns). */
  private pump(early = false): void {
    if (this.inFlight) return;
    if (this.failure) {
      this.failQueued(this.failure);
      return;
    }
    const job = this.jobs.length > 0 && (this.lastWasBatch || this.queue.length === 0) ? this.jobs.shift() : undefined;
    if (job) {
      this.lastWasBatch = false;
      this.send(job.req, job);
      return;
    }
    if (this.queue.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(this.maxBatch);
    this.lastWasBatch = true;
    this.eagerBatch = Math.ceil(batch.length / 2);
    this.sentEarly = early;
    this.send(
      { type: "batch", txns: batch.map((q) => wireTxn(q.req)) },
      {
        reply: (reply) => this.settleBatch(batch, reply),
        lost: (err) => {
          const e = new UnavailableError(
            `storage unavailable: the SQLite writer stopped while committing ${batch.length} transaction(s); whether they were applied is unknown`,
            { cause: err },
          );
          for (const q of batch) q.reject(e);
        },
      },
    );
  }

  private send(req: WriterRequest, inFlight: InFlight): void {
    this.inFlight = inFlight;
    this.writer.post(req);
  }

  private readonly onReply = (reply: WriterReply): void => {
    const done = this.inFlight;
    this.inFlight = undefined;
    if (reply.type !== "batch") {
      // Handled before the next request goes out: a failed check, or a batch failed for damage,
      // must stop the writes queued behind it.
      done?.reply(reply);
      this.pump();
      return;
    }
    const started = performance.now();
    this.commitSeconds = reply.seconds;
    setImmediate(() => (this.answerSeconds = (performance.now() - started) / 1000));
    // Either the next batch commits while this one's callers are answered, or it waits for the
    // end of this turn and takes along what they send next (see overlapPays).
    if (this.overlapPays()) this.pump(true);
    else this.flushTimer ??= setImmediate(this.onFlushTimer);
    done?.reply(reply);
  };

  /**
   * Whether to send batches early (pipelined) rather than gathered at the end of a turn.
   * Callers answered in one turn (streams that renew again as soon as they are answered) come
   * back in one turn too. Gathered, they make one batch: the writer idles while this thread
   * works on them, then this thread idles while the writer commits. Sent in two halves, one
   * half as soon as it is here and the other as soon as the writer answers, the writer commits
   * one half while this thread works on the other, at the price of twice the commits. That pays
   * when a commit's fixed cost (fsync) is below this thread's work on a whole batch: taken to
   * hold if the last commit took no longer than the turn that handled its answer (than twice
   * that turn, once halved: the halves merge again when commits get slow).
   */
  private overlapPays(): boolean {
    return this.commitSeconds <= this.answerSeconds * (this.sentEarly ? 2 : 1);
  }

  /** The file's check, the writer's first request (see `checked`). */
  private check(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.jobs.push({
        req: { type: "check" },
        reply: (reply) => {
          if (reply.type === "check") {
            this.schemaRaisedFrom = reply.raisedFrom;
            return resolve(reply.seconds);
          }
          const why = reply.type === "failed" ? reply.message : `unexpected ${reply.type}`;
          this.failure = new UnavailableError(`storage unavailable: ${why}. To repair: ${repairAdvice(this.file)}`);
          reject(this.failure);
        },
        lost: reject,
      });
      this.pump();
    });
  }

  /** Send a request other than a batch when its turn comes; resolves with its reply. */
  private request(req: WriterRequest): Promise<WriterReply> {
    return new Promise((resolve, reject) => {
      this.jobs.push({ req, reply: resolve, lost: reject });
      this.pump();
    });
  }

  /** The writer answered a batch: settle its promises and tell the watchers. */
  private settleBatch(batch: Queued[], reply: WriterReply): void {
    if (reply.type === "failed" && reply.code === "SQLITE_FULL") {
      // Disk full: nothing applied, and clients are told so (RESOURCE_EXHAUSTED) rather than
      // "retry"; /readyz is not ready until a write succeeds again (see ping).
      this.diskFull = new ResourceExhaustedError(
        `disk full: the store could not commit ${batch.length} write(s), none applied (SQLITE_FULL: ${reply.message}); ` +
          `free space on the filesystem of ${path.dirname(this.file)}: writes fail until then`,
      );
      for (const q of batch) q.reject(this.diskFull);
      return;
    }
    if (reply.type === "failed" && (reply.code === "SQLITE_CORRUPT" || reply.code === "SQLITE_NOTADB")) {
      // Damage found while writing: nothing more is written to this file.
      this.failure = new UnavailableError(
        `storage unavailable: the SQLite store ${this.file} is damaged (${reply.code}: ${reply.message}); nothing more is written to it. To repair: ${repairAdvice(this.file)}`,
      );
      for (const q of batch) q.reject(this.failure);
      return;
    }
    if (reply.type !== "batch") {
      // Our own refusals (a second writer) say what to do; driver failures stay in the log.
      const why = reply.type === "failed" && reply.refused ? `: ${reply.message}` : "; retry";
      const e = new UnavailableError(`storage unavailable: committing ${batch.length} transaction(s) failed, none applied${why}`, {
        cause: new Error(`SQLite store ${this.file}: ${reply.type === "failed" ? reply.message : `unexpected ${reply.type}`}`),
      });
      for (const q of batch) q.reject(e);
      return;
    }
    this.diskFull = undefined;
    this.onCommit?.(batch.length, reply.seconds);
    const events: WatchEvent[] | undefined = this.hub.hasLiveWatchers ? [] : undefined;
    const results = batch.map((q, i) => toResult(q.req, reply.outcomes[i]!, events));
    const before = this.rev;
    this.rev = Math.max(before, reply.revision);
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
    if (reply.revision > before) this.hub.publish(events ?? [], reply.revision);
  }

  private writerStopped(err: Error): void {
    this.failure = new UnavailableError(`storage unavailable: the SQLite writer thread stopped (${err.message}); restart the server`, {
      cause: err,
    });
    const lost = this.inFlight;
    this.inFlight = undefined;
    lost?.lost(this.failure);
    this.pump();
  }

  private failQueued(err: UnavailableError): void {
    for (const q of this.queue.splice(0)) q.reject(err);
    for (const job of this.jobs.splice(0)) job.lost(err);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Runs in a read transaction: `meta`'s revision and the rows are of one snapshot. */
  private readList(asked: number, range: KeyRange, fetch: number): { at: number; rows: KvRow[] } {
    const head = this.sql.getMeta.get("revision")!.value;
    if (head > this.readRev) this.readRev = head;
    const at = asked === 0 ? head : asked;
    if (at > head) throw futureRevision("revision", at, head);
    if (at < this.compactRev) throw new CompactedError(at, this.compactRev);
    return { at, rows: at === head ? this.sql.listHead(range, fetch) : this.sql.listPast(range, at, fetch) };
  }

  /**
   * The writer records the compact revision first, then deletes in steps. Recording first means
   * no read or watch below `revision` can run against a history that is already partly
   * deleted; if the process stops half-way, the rows left over are removed by the next compaction.
   */
  private async runCompaction(revision: number): Promise<void> {
    this.assertOpen();
    if (revision > this.head()) throw futureRevision("revision", revision, this.head());
    if (revision <= this.compactRev) return;
    const begun = await this.compactRequest({ type: "compact-begin", revision });
    if (begun.type !== "compact-begin") throw new Error(`unexpected ${begun.type}`);
    if (revision > this.compactRev) this.compactRev = revision;
    const bound = begun.bound;
    let from = 0;
    for (;;) {
      this.assertOpen();
      const step = await this.compactRequest({ type: "compact-step", revision, from, bound, rows: this.compactBatchRows });
      if (step.type !== "compact-step") throw new Error(`unexpected ${step.type}`);
      if (step.end >= bound - 1) return;
      from = step.end;
    }
  }

  private async compactRequest(req: WriterRequest): Promise<WriterReply> {
    if (this.failure) throw this.failure;
    const reply = await this.request(req);
    if (reply.type === "failed") {
      throw new UnavailableError("storage unavailable: compact failed; retry", {
        cause: new Error(`SQLite store ${this.file}: ${reply.message}`),
      });
    }
    return reply;
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

/**
 * The request as sent to the writer. Posting copies each value's whole ArrayBuffer, so a value
 * that is a view into a larger buffer is copied out first.
 */
function wireTxn(req: TxnRequest): TxnRequest {
  let copy: TxnRequest | undefined;
  req.ops.forEach((op, i) => {
    if (op.type !== "put" || (op.value.byteOffset === 0 && op.value.byteLength === op.value.buffer.byteLength)) return;
    copy ??= { compare: req.compare, ops: [...req.ops] };
    copy.ops[i] = { type: "put", key: op.key, value: op.value.slice() };
  });
  return copy ?? req;
}

/** The caller's TxnResult from the writer's outcome; the events of its changes go to `events`. */
function toResult(req: TxnRequest, outcome: TxnOutcome, events: WatchEvent[] | undefined): TxnResult {
  if (!outcome.succeeded) {
    return { succeeded: false, revision: outcome.revision, current: outcome.current.map((v, i) => (v ? toKv(req.compare[i]!.key, v) : undefined)) };
  }
  const rev = outcome.revision;
  const results = req.ops.map((op, i): KeyValue | undefined => {
    const v = outcome.prev[i]!;
    const prev = v ? toKv(op.key, v) : undefined;
    if (op.type === "put") {
      const kv: KeyValue = { key: op.key, value: op.value, createRevision: prev ? prev.createRevision : rev, modRevision: rev };
      events?.push(prev ? { type: "put", kv, prev } : { type: "put", kv });
      return kv;
    }
    if (prev) events?.push({ type: "delete", kv: tombstone(op.key, rev), prev });
    return prev;
  });
  return { succeeded: true, revision: rev, results };
}

function toKv(key: string, [value, createRevision, modRevision]: Version): KeyValue {
  return { key, value, createRevision, modRevision };
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
