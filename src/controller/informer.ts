/**
 * StoreInformer: a local cache of the objects under one store prefix, kept in step by
 * list-then-watch (client-go's reflector, in process). On a broken watch (compaction, store
 * trouble) it lists again, with backoff, and reports the difference as adds, updates and deletes.
 */
import { Backoff, type BackoffOptions } from "../backoff.js";
import type { KeyValue, Store, StoreWatch } from "../store/store.js";

export interface InformerHandlers<T> {
  onAdd?(name: string, obj: T): void;
  onUpdate?(name: string, obj: T, old: T): void;
  onDelete?(name: string, old: T): void;
}

export interface StoreInformerOptions<T> extends InformerHandlers<T> {
  store: Store;
  prefix: string;
  decode: (kv: KeyValue) => T;
  onError?: (err: Error) => void;
  backoff?: BackoffOptions;
}

export class StoreInformer<T> {
  private readonly items = new Map<string, T>();
  private revision = 0;
  private watch: StoreWatch | undefined;
  private stopped = false;
  private waiters: { revision: number; resolve: () => void }[] = [];
  private readonly backoff: Backoff;
  /** When the current watch started (for the backoff's reset after a long healthy run). */
  private healthySince: number | undefined;

  constructor(private readonly opts: StoreInformerOptions<T>) {
    this.backoff = new Backoff(opts.backoff);
  }

  /** Resolves once the first list is loaded. */
  async start(): Promise<void> {
    await this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.watch?.cancel();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
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

  private async relist(): Promise<void> {
    const fresh = new Map<string, T>();
    let after: string | undefined;
    let revision: number | undefined;
    for (;;) {
      const page = await this.opts.store.list(this.opts.prefix, { revision, startAfter: after, limit: 5000 });
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
    const retry = (): void => {
      const healthyMs = this.healthySince === undefined ? 0 : Date.now() - this.healthySince;
      this.healthySince = undefined;
      setTimeout(() => {
        if (this.stopped) return;
        this.relist().catch((e: unknown) => {
          this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
          retry();
        });
      }, this.backoff.next(healthyMs)).unref();
    };
    retry();
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
