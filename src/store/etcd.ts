/**
 * EtcdStore: the Store contract (store.ts) on etcd 3.4, for one or several nodeplane
 * processes sharing one etcd cluster.
 *
 * Keys. The store lives under a prefix (default "/nodeplane"): store key k is etcd key
 * prefix + k, so several clusters can share an etcd if no prefix is a prefix of another. The
 * etcd key equal to the prefix itself (no store key maps to it: keys are never empty) is the
 * meta key: its value is the compact revision, in decimal (kube-apiserver's "compact_rev_key").
 *
 * Revisions are etcd's: a KeyValue's revisions are etcd's create and mod revisions, a
 * transaction's revision is its response header's, so a revision means the same on every
 * replica. A transaction is one etcd Txn: each compare is `mod_revision(key) == R` (etcd
 * compares an absent key as revision 0, so R = 0 means "absent"); the success branch holds the
 * ops with prev_kv (a put's createRevision and a delete's result come from it), the failure
 * branch one range per compared key (the current versions a failed compare answers with).
 * Group commit is etcd's: concurrent transactions are proposed and synced together.
 *
 * Compaction, shared by replicas (kube-apiserver's compactor): compact(R) first moves the
 * marker from C to R with a compare-and-swap on the meta key (so replicas compacting at once
 * take turns, and each compaction is recorded before history is discarded), then asks etcd to
 * compact. The marker is the store's compact revision: reads and watches below it fail with
 * CompactedError even while etcd's own compaction is still pending or failed (the next one
 * covers it). If something else compacted etcd further (etcd's --auto-compaction, another
 * cluster on the same etcd), a read below that fails with CompactedError naming the current
 * revision. Watches: see etcd-watch.ts.
 *
 * Errors: see etcd-client.ts. As SqliteStore does, a read at a future revision is InvalidError,
 * and a txn etcd refuses as malformed (over --max-txn-ops, over --max-request-bytes) is too.
 */
import type { IKeyValue, IRangeRequest, IRequestOp, ITxnResponse } from "etcd3";
import { CompactedError, InvalidError, UnavailableError } from "../errors.js";
import { EtcdCallError, EtcdCalls, type EtcdConnectionOptions, etcdClientOptions } from "./etcd-client.js";
import { EtcdWatchHub } from "./etcd-watch.js";
import { compareKeys, futureRevision, prefixEnd, validateRevision, validateTxn } from "./keys.js";
import type { KeyValue, ListOptions, ListResult, Store, StoreWatch, TxnRequest, TxnResult, WatchEvent, WatchListener } from "./store.js";
import { messageOf } from "./watch-hub.js";

export interface EtcdStoreOptions extends EtcdConnectionOptions {
  /** etcd key prefix of this cluster's data (default "/nodeplane"). */
  prefix?: string;
  /** How long a watch may wait, silent, for a revision written outside the prefix before the store writes its meta key, ms (default 1,000). */
  progressCheckMs?: number;
}

export const DEFAULT_ETCD_PREFIX = "/nodeplane";

const EMPTY = new Uint8Array(0);

/** The meta key's state: the compact revision, its mod revision (for the CAS) and the read's header revision. */
interface Marker {
  compacted: number;
  modRevision: number;
  revision: number;
}

export class EtcdStore implements Store {
  private readonly root: string;
  private readonly rootBytes: number;
  private readonly meta: Buffer;
  private readonly hub: EtcdWatchHub;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly calls: EtcdCalls,
    opts: EtcdStoreOptions,
  ) {
    this.root = opts.prefix ?? DEFAULT_ETCD_PREFIX;
    this.meta = Buffer.from(this.root);
    this.rootBytes = this.meta.length;
    this.hub = new EtcdWatchHub({
      client: calls.client,
      range: { start: this.meta, end: rangeEnd(this.root) },
      decode: (ev) => this.toEvent(ev.type, ev.kv, ev.prev_kv),
      compactRevision: async () => (await this.marker()).compacted,
      currentRevision: async () => (await this.marker()).revision,
      tick: () => this.tick(),
      checkMs: opts.progressCheckMs ?? 1000,
    });
  }

  /** Connect and check that etcd answers; fails with InvalidError (bad options) or UnavailableError. */
  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    if (opts.prefix === "") throw InvalidError.of("etcd-prefix", "", "must not be empty (e.g. /nodeplane)");
    const endpoints = opts.endpoints.join(",");
    const calls = new EtcdCalls(etcdClientOptions(opts), endpoints);
    const store = new EtcdStore(calls, opts);
    try {
      await store.marker();
    } catch (err) {
      calls.close();
      throw new UnavailableError(`cannot reach etcd at ${endpoints}: ${rootCause(err).replace(/\.? ?Resolution note: ?$/, "")}`, { cause: err });
    }
    return store;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    // "" is no store key (and would read the meta key).
    if (key === "") return undefined;
    const res = await this.calls.idempotent("get", (c) => c.kv.range({ key: this.etcdKey(key) }));
    const kv = res.kvs[0];
    return kv && toKeyValue(key, kv);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    // 0 means "current", as in etcd.
    const asked = opts.revision ?? 0;
    const limit = opts.limit ?? 0;
    const invalid = validateRevision("revision", asked) ?? validateRevision("limit", limit);
    if (invalid) throw invalid;
    const range: IRangeRequest = { ...this.listRange(prefix, opts.startAfter), limit };
    if (asked === 0) {
      const res = await this.calls.idempotent("list", (c) => c.kv.range(range));
      return { kvs: res.kvs.map((kv) => toKeyValue(this.storeKey(kv.key), kv)), revision: Number(res.header.revision), more: res.more };
    }
    // The marker and the rows in one read, so that a read below the marker is refused exactly.
    let res: ITxnResponse;
    try {
      res = await this.calls.idempotent("list", (c) =>
        c.kv.txn({ compare: [], success: [{ request_range: { key: this.meta } }, { request_range: { ...range, revision: asked } }] }),
      );
    } catch (err) {
      throw await this.revisionError(err, asked);
    }
    const compacted = markerOf(res.responses[0]!.response_range.kvs[0], 0).compacted;
    if (asked < compacted) throw new CompactedError(asked, compacted);
    const rows = res.responses[1]!.response_range;
    return { kvs: rows.kvs.map((kv) => toKeyValue(this.storeKey(kv.key), kv)), revision: asked, more: rows.more };
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    this.assertOpen();
    const invalid = validateTxn(req);
    if (invalid) throw invalid;
    const success = req.ops.map((op): IRequestOp => {
      const key = this.etcdKey(op.key);
      if (op.type === "delete") return { request_delete_range: { key, prev_kv: true } };
      return { request_put: { key, value: Buffer.from(op.value.buffer, op.value.byteOffset, op.value.byteLength), prev_kv: true } };
    });
    let res: ITxnResponse;
    try {
      res = await this.calls.write("txn", (c) =>
        c.kv.txn({
          compare: req.compare.map((cmp) => ({ key: this.etcdKey(cmp.key), target: "Mod", result: "Equal", mod_revision: cmp.modRevision })),
          success,
          failure: req.compare.map((cmp) => ({ request_range: { key: this.etcdKey(cmp.key) } })),
        }),
      );
    } catch (err) {
      if (err instanceof EtcdCallError && err.failure.kind === "refused") {
        throw InvalidError.of("ops", `${req.ops.length} op(s)`, `etcd refused the transaction: ${err.failure.reason}`);
      }
      throw err;
    }
    const revision = Number(res.header.revision);
    if (!res.succeeded) {
      const current = req.compare.map((cmp, i) => {
        const kv = res.responses[i]!.response_range.kvs[0];
        return kv && toKeyValue(cmp.key, kv);
      });
      return { succeeded: false, revision, current };
    }
    const results = req.ops.map((op, i): KeyValue | undefined => {
      const r = res.responses[i]!;
      if (op.type === "delete") {
        const prev = r.response_delete_range.prev_kvs[0];
        return prev && toKeyValue(op.key, prev);
      }
      // etcd answers a put's prev_kv with null when the key was absent.
      const prev = r.response_put.prev_kv as IKeyValue | null;
      return { key: op.key, value: op.value, createRevision: prev ? Number(prev.create_revision) : revision, modRevision: revision };
    });
    return { succeeded: true, revision, results };
  }

  watch(prefix: string, afterRevision: number, listener: WatchListener): StoreWatch {
    const invalid = validateRevision("afterRevision", afterRevision);
    if (invalid || this.closed) {
      const err = invalid ?? closedError();
      setImmediate(() => listener.onError(err));
      return { cancel: () => {} };
    }
    return this.hub.watch(prefix, afterRevision, listener);
  }

  /** Concurrent compactions (of this store or of other replicas) take turns on the marker's compare-and-swap. */
  async compact(revision: number): Promise<void> {
    this.assertOpen();
    const invalid = validateRevision("revision", revision);
    if (invalid) throw invalid;
    await this.runCompaction(revision);
  }

  async currentRevision(): Promise<number> {
    this.assertOpen();
    const { revision } = await this.marker();
    this.hub.noteRevision(revision);
    return revision;
  }

  async compactRevision(): Promise<number> {
    this.assertOpen();
    return (await this.marker()).compacted;
  }

  async ping(): Promise<void> {
    this.assertOpen();
    await this.marker();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    // Leave the caller's stack first: watch listeners are never called from inside it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.calls.settle();
    this.hub.closeAll(closedError());
    this.calls.close();
  }

  /** Move the marker to `revision` (compare-and-swap, so replicas take turns), then compact etcd. */
  private async runCompaction(revision: number): Promise<void> {
    let m = await this.marker();
    for (;;) {
      if (revision > m.revision) throw futureRevision("revision", revision, m.revision);
      if (revision <= m.compacted) return;
      const res = await this.calls.write("txn on the compaction marker", (c) =>
        c.kv.txn({
          compare: [{ key: this.meta, target: "Mod", result: "Equal", mod_revision: m.modRevision }],
          success: [{ request_put: { key: this.meta, value: Buffer.from(String(revision)) } }],
          failure: [{ request_range: { key: this.meta } }],
        }),
      );
      if (res.succeeded) break;
      // Another replica moved it first: judge again against what it wrote.
      m = markerOf(res.responses[0]!.response_range.kvs[0], Number(res.header.revision));
    }
    try {
      await this.calls.idempotent("compact", (c) => c.kv.compact({ revision }));
    } catch (err) {
      // etcd is compacted further already (another replica got there first): nothing to do.
      if (err instanceof EtcdCallError && err.failure.kind === "compacted") return;
      throw err;
    }
  }

  /** Rewrite the meta key as it is: a revision every watch stream sees (etcd-watch.ts). */
  private async tick(): Promise<void> {
    const m = await this.marker();
    await this.calls.write("txn on the compaction marker", (c) =>
      c.kv.txn({
        compare: [{ key: this.meta, target: "Mod", result: "Equal", mod_revision: m.modRevision }],
        success: [{ request_put: { key: this.meta, value: Buffer.from(String(m.compacted)) } }],
      }),
    );
  }

  private async marker(): Promise<Marker> {
    const res = await this.calls.idempotent("read", (c) => c.kv.range({ key: this.meta }));
    return markerOf(res.kvs[0], Number(res.header.revision));
  }

  /** The error for a read at `revision` that etcd refused. */
  private async revisionError(err: unknown, revision: number): Promise<Error> {
    if (!(err instanceof EtcdCallError)) return err instanceof Error ? err : new Error(String(err));
    const m = await this.marker();
    if (err.failure.kind === "future") return futureRevision("revision", revision, m.revision);
    if (err.failure.kind === "compacted") return new CompactedError(revision, m.compacted > revision ? m.compacted : m.revision);
    return new UnavailableError(`storage unavailable: etcd refused a read: ${err.message}`);
  }

  private toEvent(type: "Put" | "Delete", kv: IKeyValue, prev: IKeyValue | null): WatchEvent | undefined {
    if (kv.key.length === this.rootBytes) return undefined;
    const key = this.storeKey(kv.key);
    if (type === "Delete") {
      // As etcd sends it: key and revision only; the deleted version is `prev`.
      return { type: "delete", kv: { key, value: EMPTY, createRevision: 0, modRevision: Number(kv.mod_revision) }, prev: prev ? toKeyValue(key, prev) : undefined };
    }
    const next = toKeyValue(key, kv);
    return prev ? { type: "put", kv: next, prev: toKeyValue(key, prev) } : { type: "put", kv: next };
  }

  private etcdKey(key: string): Buffer {
    return Buffer.from(this.root + key);
  }

  private storeKey(key: Buffer): string {
    return key.toString("utf8", this.rootBytes);
  }

  /** The etcd range of the store keys under `prefix`, after `startAfter` if that is further on. */
  private listRange(prefix: string, startAfter: string | undefined): { key: Buffer; range_end: Buffer } {
    const end = rangeEnd(this.root + prefix);
    if (startAfter !== undefined && compareKeys(startAfter, prefix) >= 0) return { key: Buffer.from(`${this.root}${startAfter}\0`), range_end: end };
    // The smallest store key is the meta key plus one byte: "" lists every store key and not the meta key.
    return { key: Buffer.from(prefix === "" ? `${this.root}\0` : this.root + prefix), range_end: end };
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }
}

function closedError(): UnavailableError {
  return new UnavailableError("store is closed");
}

/** etcd's range end for every key starting with `prefix` ("\0" = no upper bound). */
function rangeEnd(prefix: string): Buffer {
  const end = prefixEnd(prefix);
  return end === undefined ? Buffer.from([0]) : Buffer.from(end);
}

/** The message of the innermost cause (the driver's own words). */
function rootCause(err: unknown): string {
  let e = err;
  while (e instanceof Error && e.cause !== undefined) e = e.cause;
  return messageOf(e);
}

function markerOf(kv: IKeyValue | undefined, revision: number): Marker {
  const compacted = kv ? Number(kv.value.toString()) : 0;
  return { compacted: Number.isSafeInteger(compacted) && compacted > 0 ? compacted : 0, modRevision: kv ? Number(kv.mod_revision) : 0, revision };
}

function toKeyValue(key: string, kv: IKeyValue): KeyValue {
  return { key, value: kv.value, createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision) };
}
