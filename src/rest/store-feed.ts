/**
 * A watch on one store prefix for the kinds the watch cache does not hold (Leases, Events):
 * the store's own watch from a revision, decoded and filtered, as an async iterable of
 * ADDED/MODIFIED/DELETED (and BOOKMARK when allowed) events.
 *
 * Bounded: when more than `queueLimit` events wait for a slow client, the feed ends with
 * ResourceExhaustedError naming the revision to resume from (the store is never blocked). A
 * compacted start revision ends it with CompactedError (410 Expired for the client).
 * Bookmarks come from the store's progress notifications, at most one per
 * `bookmarkIntervalMs`.
 */
import { ResourceExhaustedError } from "../errors.js";
import type { KeyValue, Store, StoreWatch, WatchEvent } from "../store/store.js";

export type FeedEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

export interface FeedEvent<T> {
  type: FeedEventType;
  /** Undefined for BOOKMARK; for DELETED the last state (sent at the event's revision). */
  obj: T | undefined;
  revision: number;
}

export interface StoreFeedOptions<T> {
  store: Store;
  prefix: string;
  afterRevision: number;
  decode: (kv: KeyValue) => T;
  matches: (obj: T) => boolean;
  allowBookmarks: boolean;
  bookmarkIntervalMs: number;
  queueLimit: number;
  now?: () => number;
}

export class StoreFeed<T> implements AsyncIterable<FeedEvent<T>> {
  private queue: FeedEvent<T>[] = [];
  private wake: (() => void) | undefined;
  private error: Error | undefined;
  private ended = false;
  private lastRevision: number;
  private lastBookmark: number;
  private readonly watch: StoreWatch;
  private readonly opts: StoreFeedOptions<T>;
  private readonly now: () => number;

  constructor(opts: StoreFeedOptions<T>) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.lastRevision = opts.afterRevision;
    this.lastBookmark = this.now();
    this.watch = opts.store.watch(opts.prefix, opts.afterRevision, {
      onEvents: (events) => {
        for (const ev of events) this.offer(ev);
      },
      onProgress: (revision) => this.progress(revision),
      onError: (err) => this.fail(err),
    });
  }

  /** Stop: the iteration ends after the events already taken. */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.watch.cancel();
    this.signal();
  }

  private offer(ev: WatchEvent): void {
    if (this.ended) return;
    const revision = ev.kv.modRevision;
    this.lastRevision = revision;
    // A delete carries its previous version; a put whose previous version matched but whose
    // new one does not leaves the watcher's view (DELETED), as Kubernetes' watch cache does.
    const obj = ev.type === "put" ? this.opts.decode(ev.kv) : undefined;
    const prev = ev.prev ? this.opts.decode(ev.prev) : undefined;
    const now = obj !== undefined && this.opts.matches(obj);
    const before = prev !== undefined && this.opts.matches(prev);
    let item: FeedEvent<T> | undefined;
    if (now) item = { type: before ? "MODIFIED" : "ADDED", obj, revision };
    else if (before) item = { type: "DELETED", obj: prev, revision };
    if (!item) return;
    if (this.queue.length >= this.opts.queueLimit) {
      const resume = this.queue[0]!.revision - 1;
      this.fail(new ResourceExhaustedError(`watch queue limit of ${this.opts.queueLimit} events exceeded: this watcher read too slowly; watch again from resourceVersion ${resume}`));
      return;
    }
    this.queue.push(item);
    this.signal();
  }

  private progress(revision: number): void {
    if (this.ended || revision <= this.lastRevision) return;
    this.lastRevision = revision;
    if (!this.opts.allowBookmarks || this.queue.length > 0 || this.now() - this.lastBookmark < this.opts.bookmarkIntervalMs) return;
    this.lastBookmark = this.now();
    this.queue.push({ type: "BOOKMARK", obj: undefined, revision });
    this.signal();
  }

  private fail(err: Error): void {
    if (this.ended) return;
    this.error = err;
    this.queue = [];
    this.cancel();
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FeedEvent<T>> {
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.error) throw this.error;
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.cancel();
    }
  }
}
