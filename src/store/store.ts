/**
 * The storage contract: a revisioned key/value store with history, in the manner of etcd's
 * mvcc.KV and kine's Backend. It stores bytes and revisions and knows nothing of Nodes.
 *
 * Revisions: one global counter per store. Every transaction that changes something gets the
 * next revision (all of its changes share it); a transaction that changes nothing does not
 * advance it. Revisions strictly increase and are never reused, across restarts too (and, on
 * etcd, across replicas: etcd's revision is the counter).
 *
 * Durability: a write's promise resolves only after its transaction is committed to durable
 * storage. Backends batch concurrent writes into one commit (group commit) for throughput.
 *
 * History: every change is kept as an event until compacted. `compact(R)` discards what is
 * needed only to read or watch revisions older than R; the state at R and every event after
 * R stay available. Reading or watching from a revision older than the compact revision
 * fails with CompactedError (naming the oldest revision still available).
 *
 * Errors: backends translate driver errors at their edge into src/errors.ts classes:
 * CompactedError, InvalidError (a revision in the future), UnavailableError (closed or
 * unreachable store). Compare failures are not errors: txn answers `succeeded: false`.
 */

export interface KeyValue {
  key: string;
  value: Uint8Array;
  /** Revision at which this key was created (its latest incarnation). */
  createRevision: number;
  /** Revision of this key's last change. */
  modRevision: number;
}

/** A precondition on one key: its modRevision must equal this (0 = the key must not exist). */
export interface Compare {
  key: string;
  modRevision: number;
}

export type Op = { type: "put"; key: string; value: Uint8Array } | { type: "delete"; key: string };

export interface TxnRequest {
  /** All must hold for the ops to apply; otherwise nothing changes. */
  compare: Compare[];
  /** Applied atomically, in order, at one new revision. */
  ops: Op[];
}

export type TxnResult =
  | {
      succeeded: true;
      /** The revision of this transaction's changes (the current revision if it changed nothing). */
      revision: number;
      /** Per op: for put the new KeyValue, for delete the deleted KeyValue (undefined if absent). */
      results: (KeyValue | undefined)[];
    }
  | {
      succeeded: false;
      /** The store's revision when the compare was evaluated. */
      revision: number;
      /** Per compared key, in compare order: its current KeyValue (undefined if absent). */
      current: (KeyValue | undefined)[];
    };

export interface ListOptions {
  /** Read the state as of this revision (default: current). */
  revision?: number;
  /** Only keys strictly greater than this (for paging). */
  startAfter?: string;
  /** At most this many (0 or absent: no limit). */
  limit?: number;
}

export interface ListResult {
  /** Keys in ascending byte order. */
  kvs: KeyValue[];
  /** The revision the list is consistent with. */
  revision: number;
  /** True when keys beyond the last returned one exist under the prefix at that revision. */
  more: boolean;
}

export interface WatchEvent {
  type: "put" | "delete";
  /** For put: the new version. For delete: key, empty value, modRevision = the deletion's revision. */
  kv: KeyValue;
  /** The version before this change (always set for delete, unset for a create). */
  prev?: KeyValue;
}

export interface WatchListener {
  /** Events in revision order, each exactly once; called with the events of one revision or more. */
  onEvents(events: WatchEvent[]): void;
  /**
   * The store has reached this revision and every event up to it under the prefix has been
   * delivered (bookmark source). Backends call it after commits that matched nothing, and
   * may call it at other times; never with a revision lower than one already delivered.
   */
  onProgress(revision: number): void;
  /** The watch has ended (CompactedError, UnavailableError on close). No calls follow. */
  onError(err: Error): void;
}

export interface StoreWatch {
  /** Stop delivering; idempotent. */
  cancel(): void;
}

export interface Store {
  /** The latest version of a key, or undefined. */
  get(key: string): Promise<KeyValue | undefined>;
  /** Keys under a prefix, at a revision, in pages. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  /** Compare-and-swap transaction (see TxnRequest). */
  txn(req: TxnRequest): Promise<TxnResult>;
  /**
   * Deliver every change under `prefix` with a revision greater than `afterRevision`, in order,
   * then live changes as they commit. A revision older than the compact revision ends the
   * watch at once with CompactedError through onError.
   */
  watch(prefix: string, afterRevision: number, listener: WatchListener): StoreWatch;
  /** Discard history older than `revision` (see above). Idempotent; never moves backwards. */
  compact(revision: number): Promise<void>;
  currentRevision(): Promise<number>;
  /** The oldest revision that can still be read or watched from. */
  compactRevision(): Promise<number>;
  /** Resolves if the store is reachable and open, else rejects with UnavailableError. */
  ping(): Promise<void>;
  /**
   * Finish in-flight writes, end every watch with UnavailableError, release the store.
   * Later calls fail with UnavailableError. Idempotent.
   */
  close(): Promise<void>;
}
