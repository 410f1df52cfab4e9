/**
 * Reflector: the one list-then-watch loop of the code base (client-go's reflector + indexer). It
 * keeps a local copy of every object a ListerWatcher serves: lists (in pages, all at the first
 * page's revision), watches from the list's revision, and on failure either lists again (the
 * source says the revision is gone: compaction, or a revision the source no longer knows) or
 * waits and watches again from the last revision applied. Waits come from one Backoff (800 ms
 * → 30 s with jitter, reset after 2 minutes of healthy watching) on the injected Clock.
 *
 * Contract, for every subscriber:
 * - handlers run synchronously, one at a time, in revision order; every change after the first
 *   list reaches them once, none twice (a change at or below the revision already applied and
 *   already reflected is dropped);
 * - subscribe() first replays every object held to onAdd;
 * - after a relist (not the first list) onRelist runs first — a gap may have been skipped —, then
 *   exactly the difference: deletes (names gone, or a new incarnation of a name), then adds and
 *   updates in the list's order; objects unchanged (same revision) are not reported;
 * - a handler that throws is reported to onError and does not stop the others;
 * - nothing runs after stop() has resolved.
 * Objects handed out are shared: nobody may modify them.
 */
import { setImmediate as yieldToIo } from "node:timers/promises";
import { Backoff, type BackoffOptions } from "../backoff.js";
import { type Clock, sleep, systemClock } from "../clock.js";
import type { ListerWatcher, WatchBatch } from "./source.js";
import { RevisionWaiters } from "./waiters.js";

export interface ReflectorHandlers<T> {
  /** `stored`: the object's bytes as stored, for a watched change whose source has them (see SourceItem). */
  onAdd?(name: string, obj: T, revision: number, stored?: Uint8Array): void;
  onUpdate?(name: string, obj: T, old: T, revision: number, stored?: Uint8Array): void;
  /** `last` is the object's last state as the source reported it, when it did (else use `old`). */
  onDelete?(name: string, old: T, revision: number, last?: T): void;
  /** A relist is about to replace the contents (changes in between may not be reported one by one). */
  onRelist?(revision: number): void;
}

export interface ReflectorOptions<T> {
  source: ListerWatcher<T>;
  clock?: Clock;
  backoff?: BackoffOptions;
  /** Every failure recovered from (a failed list or watch, a throwing handler). Never stops the loop. */
  onError?: (err: Error) => void;
  /**
   * Which incarnation of a name an object is (e.g. its uid): a relist that finds another one
   * reports a delete and an add instead of an update.
   */
  incarnation?: (obj: T) => string;
}

interface Entry<T> {
  obj: T;
  revision: number;
}

export class Reflector<T> {
  private items = new Map<string, Entry<T>>();
  /** Grows with every change to the contents (see `changes`). */
  private changeCount = 0;
  private applied = 0;
  private readonly subscribers = new Set<ReflectorHandlers<T>>();
  private readonly waiters = new RevisionWaiters();
  private readonly abort = new AbortController();
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private loop: Promise<void> | undefined;
  private isSynced = false;
  private resolveSynced!: () => void;
  private readonly whenSynced = new Promise<void>((resolve) => (this.resolveSynced = resolve));

  constructor(private readonly o: ReflectorOptions<T>) {
    this.clock = o.clock ?? systemClock;
    this.backoff = new Backoff(o.backoff);
  }

  /** Start listing and watching in the background; resolves once synced (or stopped). Idempotent. */
  start(): Promise<void> {
    if (!this.loop && !this.stopped) this.loop = this.run().catch((err: unknown) => this.report(err));
    return this.whenSynced;
  }

  /** Stop; resolves once the loop has ended. Waiters get false, synced() resolves. Idempotent. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.abort.abort();
      this.waiters.close();
      this.resolveSynced();
    }
    await this.loop;
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** Resolves once the first full list is applied, or the reflector stopped. */
  synced(): Promise<void> {
    return this.whenSynced;
  }

  get hasSynced(): boolean {
    return this.isSynced;
  }

  /** The last revision applied (0 before the first list). */
  get revision(): number {
    return this.applied;
  }

  get size(): number {
    return this.items.size;
  }

  /** Subscriptions not yet ended (a stopped controller leaves none). */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  get(name: string): T | undefined {
    return this.items.get(name)?.obj;
  }

  /** A number that grows with every change to the contents: equal twice, nothing changed between. */
  get changes(): number {
    return this.changeCount;
  }

  *entries(): IterableIterator<[string, T]> {
    for (const [name, e] of this.items) yield [name, e.obj];
  }

  /**
   * Every name and object now, as two arrays of one order (for a loop over all that awaits: no
   * pair or iterator result per object, and no lookup per name while nothing has changed).
   */
  snapshot(): { names: string[]; objects: T[] } {
    const names = new Array<string>(this.items.size);
    const objects = new Array<T>(this.items.size);
    let i = 0;
    this.items.forEach((e, name) => {
      names[i] = name;
      objects[i++] = e.obj;
    });
    return { names, objects };
  }

  /** True once every change up to `revision` is applied; false if the reflector stops first. */
  waitFor(revision: number): Promise<boolean> {
    return this.waiters.wait(revision, this.isSynced ? this.applied : -1);
  }

  /** Replay every object to onAdd, then report every change until the returned function is called. */
  subscribe(handlers: ReflectorHandlers<T>): () => void {
    this.subscribers.add(handlers);
    for (const [name, e] of this.items) this.call(() => handlers.onAdd?.(name, e.obj, e.revision));
    return () => void this.subscribers.delete(handlers);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let mustList = true;
    while (!signal.aborted) {
      let listedNow = false;
      if (mustList) {
        try {
          await this.relist(signal);
        } catch (err) {
          if (signal.aborted) return;
          this.report(err);
          await sleep(this.clock, this.backoff.next(0), signal);
          continue;
        }
        if (signal.aborted) return;
        mustList = false;
        listedNow = true;
      }
      const openedAt = this.clock.now();
      const from = this.applied;
      let failure: { err: unknown } | undefined;
      try {
        await this.o.source.watch(this.applied, (batch) => this.apply(batch), signal);
      } catch (err) {
        failure = { err };
      }
      if (signal.aborted) return;
      const healthyMs = this.clock.now() - openedAt;
      if (failure) {
        this.report(failure.err);
        if (this.o.source.classify(failure.err) === "relist") {
          mustList = true;
          // A list made just now was already too old: wait, so that retries stay bounded.
          if (listedNow && this.applied === from) await sleep(this.clock, this.backoff.next(healthyMs), signal);
          continue;
        }
      }
      await sleep(this.clock, this.backoff.next(healthyMs), signal);
    }
  }

  /** List everything, then make the contents equal to the list, reporting the difference. */
  private async relist(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, Entry<T>>();
    let next: string | undefined;
    let revision = 0;
    do {
      // Each page after a turn of the event loop, so a server answers calls while this lists.
      await yieldToIo();
      if (signal.aborted) return;
      const page = await this.o.source.list(next, signal);
      if (signal.aborted) return;
      revision = page.revision;
      for (const item of page.items) {
        const old = this.items.get(item.name);
        fresh.set(item.name, old !== undefined && old.revision === item.revision ? old : { obj: item.decode(old?.obj), revision: item.revision });
      }
      next = page.next;
    } while (next !== undefined);

    if (this.isSynced) for (const h of this.subscribers) this.call(() => h.onRelist?.(revision));
    const old = this.items;
    this.items = fresh;
    this.changeCount++;
    // The list's revision stands even if lower (the source's data was replaced): the contents are the list.
    this.applied = revision;
    const same = this.o.incarnation;
    const replaced = (a: Entry<T>, b: Entry<T>): boolean => same !== undefined && same(a.obj) !== same(b.obj);
    for (const [name, prev] of old) {
      const now = fresh.get(name);
      if (now === undefined || replaced(prev, now)) this.notify((h) => h.onDelete?.(name, prev.obj, revision));
    }
    for (const [name, e] of fresh) {
      const prev = old.get(name);
      if (prev === undefined || replaced(prev, e)) this.notify((h) => h.onAdd?.(name, e.obj, e.revision));
      else if (prev !== e) this.notify((h) => h.onUpdate?.(name, e.obj, prev.obj, e.revision));
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.resolveSynced();
    }
    this.waiters.reach(this.applied);
  }

  private apply(batch: WatchBatch<T>): void {
    if (this.stopped) return;
    for (const c of batch.changes) {
      if (c.revision < this.applied) continue;
      const prev = this.items.get(c.name);
      if (c.revision === this.applied && (c.type === "put" ? prev?.revision === c.revision : prev === undefined)) continue;
      this.applied = c.revision;
      if (c.type === "put") {
        const e = { obj: c.decode(prev?.obj), revision: c.revision };
        this.items.set(c.name, e);
        this.changeCount++;
        if (prev === undefined) this.notify((h) => h.onAdd?.(c.name, e.obj, c.revision, c.stored));
        else this.notify((h) => h.onUpdate?.(c.name, e.obj, prev.obj, c.revision, c.stored));
      } else if (prev !== undefined) {
        this.items.delete(c.name);
        this.changeCount++;
        this.notify((h) => h.onDelete?.(c.name, prev.obj, c.revision, c.last));
      }
    }
    if (batch.revision > this.applied) this.applied = batch.revision;
    this.waiters.reach(this.applied);
  }

  private notify(fn: (h: ReflectorHandlers<T>) => void): void {
    for (const h of this.subscribers) this.call(() => fn(h));
  }

  private call(fn: () => void): void {
    if (this.stopped) return;
    try {
      fn();
    } catch (err) {
      this.report(err);
    }
  }

  private report(err: unknown): void {
    try {
      this.o.onError?.(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // An onError that throws has nowhere to report to.
    }
  }
}
