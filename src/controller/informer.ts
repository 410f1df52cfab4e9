/**
 * What controllers read through.
 *
 * - NodeInformer: every node, shared. The server's watch cache is one (one decode and one copy
 *   of each node, read by the watchers and by every controller); a controller subscribes to it
 *   once it has synced and never changes the objects it hands out.
 * - StoreInformer: a local cache of the objects under one store prefix (Leases, pod CIDR
 *   blocks), kept in step by list-then-watch (client-go's reflector, in process). On a broken
 *   watch (compaction, store trouble) it lists again, with backoff, and reports the difference
 *   as adds, updates and deletes.
 */
import { setImmediate as yieldToIo } from "node:timers/promises";
import { Backoff, type BackoffOptions } from "../backoff.js";
import type { FullNode } from "../registry/reconcile.js";
import type { KeyValue, Store, StoreWatch } from "../store/store.js";

export interface InformerHandlers<T> {
  onAdd?(name: string, obj: T): void;
  onUpdate?(name: string, obj: T, old: T): void;
  onDelete?(name: string, old: T): void;
}

/** Every node, kept current by its owner and shared read-only (frozen) by its readers. */
export interface NodeInformer {
  /** Resolves once the first complete list is loaded (or the owner stopped). */
  synced(): Promise<void>;
  get(name: string): FullNode | undefined;
  entries(): IterableIterator<[string, FullNode]>;
  /** Resolves once every change up to `revision` has been applied (or the owner stopped). */
  waitFor(revision: number): Promise<void>;
  /**
   * Replays every current node to `onAdd`, then reports every change (after a relist, the
   * difference) until the returned function is called. Subscribe once synced.
   */
  subscribe(handlers: InformerHandlers<FullNode>): () => void;
}

export interface StoreInformerOptions<T> extends InformerHandlers<T> {
  store: Store;
  prefix: string;
  decode: (kv: KeyValue) => T;
  onError?: (err: Error) => void;
  backoff?: BackoffOptions;
}

/** Keys per store read while listing; between reads the event loop answers calls. */
const PAGE = 500;

export class StoreInformer<T> {
  private readonly items = new Map<string, T>();
  private revision = 0;
  private watch: StoreWatch | undefined;
  private stopped = false;
  private waiters: { revision: number; resolve: () => void }[] = [];
  private readonly backoff: Backoff;
  /** When the current watch started (for the backoff's reset after a long healthy run). */
  private healthySince: number | undefined;
  /** The list in progress, if any (stop waits for it: the store may close right after). */
  private listing: Promise<void> | undefined;
  private resolveSynced!: () => void;
  private readonly whenSynced = new Promise<void>((resolve) => (this.resolveSynced = resolve));

  constructor(private readonly opts: StoreInformerOptions<T>) {
    this.backoff = new Backoff(opts.backoff);
  }

  /** Resolves once the first list is loaded; a failed list is retried with backoff. */
  start(): Promise<void> {
    this.relistNow();
    return this.whenSynced;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.cancel();
    this.resolveSynced();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
    await this.listing;
  }

  get(name: string): T | undefined {
    return this.items.get(name);
  }

  entries(): IterableIterator<[string, T]> {
    return this.items.entries();
  }

  get size(): number {
    return this.items.size;
  }

  /** Resolves once every change up to `revision` has been applied (or the informer stopped). */
  waitFor(revision: number): Promise<void> {
    if (this.revision >= revision || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ revision, resolve }));
  }

  private relistNow(): void {
    this.listing = this.relist().then(
      () => this.resolveSynced(),
      (err: unknown) => this.watchFailed(err instanceof Error ? err : new Error(String(err))),
    ).finally(() => (this.listing = undefined));
  }

  private async relist(): Promise<void> {
    const fresh = new Map<string, T>();
    let after: string | undefined;
    let revision: number | undefined;
    for (;;) {
      // Each page after a turn of the event loop, so calls are answered while this lists.
      await yieldToIo();
      if (this.stopped) return;
      const page = await this.opts.store.list(this.opts.prefix, { revision, startAfter: after, limit: PAGE });
      revision = page.revision;
      for (const kv of page.kvs) fresh.set(this.nameOf(kv.key), this.opts.decode(kv));
      after = page.kvs.at(-1)?.key;
      if (!page.more) break;
    }
    if (this.stopped) return;
    for (const [name, old] of this.items) if (!fresh.has(name)) this.remove(name, old);
    for (const [name, obj] of fresh) this.set(name, obj);
    this.advance(revision);
    this.healthySince = Date.now();
    this.watch = this.opts.store.watch(this.opts.prefix, revision, {
      onEvents: (events) => {
        for (const ev of events) {
          const name = this.nameOf(ev.kv.key);
          if (ev.type === "put") this.set(name, this.opts.decode(ev.kv));
          else {
            const old = this.items.get(name);
            if (old !== undefined) this.remove(name, old);
          }
        }
        this.advance(events.at(-1)!.kv.modRevision);
      },
      onProgress: (rev) => this.advance(rev),
      onError: (err) => this.watchFailed(err),
    });
  }

  /** Relist after a backoff (800 ms doubling to 30 s with jitter, reset after 2 min of health). */
  private watchFailed(err: Error): void {
    if (this.stopped) return;
    this.opts.onError?.(err);
    const healthyMs = this.healthySince === undefined ? 0 : Date.now() - this.healthySince;
    this.healthySince = undefined;
    setTimeout(() => {
      if (!this.stopped) this.relistNow();
    }, this.backoff.next(healthyMs)).unref();
  }

  private set(name: string, obj: T): void {
    const old = this.items.get(name);
    this.items.set(name, obj);
    if (old === undefined) this.opts.onAdd?.(name, obj);
    else this.opts.onUpdate?.(name, obj, old);
  }

  private remove(name: string, old: T): void {
    this.items.delete(name);
    this.opts.onDelete?.(name, old);
  }

  private advance(revision: number): void {
    if (revision > this.revision) this.revision = revision;
    const ready = this.waiters.filter((w) => w.revision <= this.revision);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > this.revision);
    for (const w of ready) w.resolve();
  }

  private nameOf(key: string): string {
    return key.slice(this.opts.prefix.length);
  }
}
