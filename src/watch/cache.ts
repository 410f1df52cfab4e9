/**
 * WatchCache: one store watch on the node prefix feeds the current state of every node and
 * fans each change out to the watchers it concerns. Watchers pinned to one node by
 * `metadata.name` are indexed by name, so a change costs O(watchers it matches), not
 * O(watchers). A watcher starting at an older revision first catches up from the store's
 * history (its own store watch, paused while its queue is full), then joins the live feed.
 *
 * It is also the controllers' node informer (see NodeInformer): they read the same decoded,
 * frozen nodes (src/watch/shared-node.ts) and subscribe to the same changes, so the server
 * holds one copy of each node.
 *
 * start() loads in pages, yielding between them, so the server answers calls while it loads.
 * A watch opened before the first load is done waits for it, starting from the revision it
 * asked for or else the store's revision when it arrived (then caught up from history).
 */
import { setImmediate as yieldToIo } from "node:timers/promises";
import { InvalidError, ResourceExhaustedError, UnavailableError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { decodeNode, formatRevision, NODE_PREFIX } from "../registry/codec.js";
import type { NodeFilter } from "../registry/filter.js";
import type { FullNode } from "../registry/reconcile.js";
import type { Store, StoreWatch, WatchEvent } from "../store/store.js";
import { type Change, CatchUp, eventFor } from "./catchup.js";
import { SharedNodeDecoder } from "./shared-node.js";
import { type NodeWatchEvent, Watcher } from "./watcher.js";

export interface WatchCacheOptions {
  store: Store;
  /** Per-watcher queue bound (events). */
  queueLimit?: number;
  /** How often idle watchers that allow bookmarks get one (ms). */
  bookmarkIntervalMs?: number;
  /** Most watchers at once. */
  maxWatchers?: number;
  /** Called when the cache's own store watch or a load fails (it retries itself). */
  onError?: (err: Error) => void;
}

/** Change handlers of a subscriber (a controller). */
interface NodeHandlers {
  onAdd?(name: string, node: FullNode): void;
  onUpdate?(name: string, node: FullNode, old: FullNode): void;
  onDelete?(name: string, old: FullNode): void;
}

/** Keys per store read while loading; between reads the event loop answers calls. */
const LOAD_PAGE = 250;

export interface WatchRequest {
  /** Deliver events after this revision; undefined = from now. */
  afterRevision?: number;
  filter: NodeFilter;
  sendInitialEvents: boolean;
  allowBookmarks: boolean;
}

export class WatchCache {
  private readonly store: Store;
  private readonly queueLimit: number;
  private readonly maxWatchers: number;
  private readonly bookmarkIntervalMs: number;
  private readonly onError: (err: Error) => void;
  private readonly decoder = new SharedNodeDecoder();
  private nodes = new Map<string, FullNode>();
  private readonly subscribers = new Set<NodeHandlers>();
  private waiters: { revision: number; resolve: () => void }[] = [];
  private loaded = false;
  private resolveLoaded!: () => void;
  private readonly whenLoaded = new Promise<void>((resolve) => (this.resolveLoaded = resolve));
  /** The load in progress, if any (stop waits for it: the store may close right after). */
  private loading: Promise<void> | undefined;
  private readonly byName = new Map<string, Set<Watcher>>();
  private readonly unindexed = new Set<Watcher>();
  private readonly catchingUp = new Map<Watcher, CatchUp>();
  private revision = 0;
  /** Open watchers, counted from the moment watch() accepts one. */
  private open = 0;
  /** Bumped on every reload: a watcher that started before one must not join after it. */
  private generation = 0;
  private reloading = false;
  private storeWatch: StoreWatch | undefined;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private stopped: Error | undefined;

  constructor(opts: WatchCacheOptions) {
    this.store = opts.store;
    this.queueLimit = opts.queueLimit ?? 1000;
    this.maxWatchers = opts.maxWatchers ?? 100_000;
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 60_000;
    this.onError = opts.onError ?? (() => {});
  }

  /**
   * Load the current state (in the background: a failed load is retried with backoff) and
   * follow the store. Resolves once the first load is done (or the cache stopped).
   */
  start(): Promise<void> {
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), this.bookmarkIntervalMs);
    this.bookmarkTimer.unref();
    this.loadUntilDone(100);
    return this.whenLoaded;
  }

  /** End every watcher with `reason` (UNAVAILABLE on shutdown) and stop following the store. */
  async stop(reason: Error = new UnavailableError("server is shutting down; watch again from the last revision received")): Promise<void> {
    if (this.stopped) return;
    this.stopped = reason;
    clearInterval(this.bookmarkTimer);
    this.storeWatch?.cancel();
    for (const w of this.allWatchers()) w.fail(reason);
    this.resolveLoaded();
    for (const w of this.waiters.splice(0)) w.resolve();
    await this.loading;
  }

  get watcherCount(): number {
    return this.open;
  }

  /** Whether the first load is done. */
  get isLoaded(): boolean {
    return this.loaded;
  }

  /** Nodes held. */
  get size(): number {
    return this.nodes.size;
  }

  // NodeInformer: the controllers' view (src/controller/informer.ts).

  synced(): Promise<void> {
    return this.whenLoaded;
  }

  get(name: string): FullNode | undefined {
    return this.nodes.get(name);
  }

  entries(): IterableIterator<[string, FullNode]> {
    return this.nodes.entries();
  }

  waitFor(revision: number): Promise<void> {
    if ((this.loaded && this.revision >= revision) || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ revision, resolve }));
  }

  subscribe(handlers: NodeHandlers): () => void {
    this.subscribers.add(handlers);
    for (const [name, node] of this.nodes) handlers.onAdd?.(name, node);
    return () => void this.subscribers.delete(handlers);
  }

  /** Open a watcher. Throws InvalidError / ResourceExhaustedError / UnavailableError before any event. */
  async watch(req: WatchRequest): Promise<Watcher> {
    this.checkServing();
    if (this.open >= this.maxWatchers) {
      throw new ResourceExhaustedError(`watcher limit of ${this.maxWatchers} reached (--max-watchers); try again later`);
    }
    // Count the watcher from now on, so concurrent opens cannot overshoot the limit.
    this.open++;
    let counted = true;
    const release = (): void => {
      if (counted) this.open--;
      counted = false;
    };
    const w = new Watcher({
      filter: req.filter,
      queueLimit: this.queueLimit,
      allowBookmarks: req.allowBookmarks,
      onEnd: (x) => {
        release();
        this.detach(x);
      },
      onDrained: (x) => this.catchingUp.get(x)?.resume(),
    });
    try {
      await this.begin(w, req);
    } catch (err) {
      w.cancel();
      throw err;
    }
    return w;
  }

  private async begin(w: Watcher, req: WatchRequest): Promise<void> {
    if (!this.loaded) {
      // Not loaded yet: start where the caller asked, else at the store's revision now, once loaded.
      const afterRevision = req.afterRevision ?? (await this.store.currentRevision());
      await this.whenLoaded;
      this.checkServing();
      req = { ...req, afterRevision };
    }
    const after = req.afterRevision;
    if (after === undefined) {
      // From now: the cache's state is the start (all synchronous: no change can slip in).
      if (req.sendInitialEvents) {
        for (const node of this.nodes.values()) {
          if (req.filter.matches(node)) w.pushInitial({ type: "ADDED", node, revision: revisionOf(node) });
        }
        w.pushInitial(bookmark(this.revision));
      }
      w.startFrom(this.revision);
      this.attach(w);
      return;
    }
    const generation = this.generation;
    const current = await this.store.currentRevision();
    if (after > current) {
      throw InvalidError.of("resource_version", String(after), `is newer than the server's current revision ${current}`);
    }
    if (req.sendInitialEvents) {
      const nodes = await this.listAt(after);
      for (const node of nodes) {
        if (req.filter.matches(node)) w.pushInitial({ type: "ADDED", node, revision: revisionOf(node) });
      }
      w.pushInitial(bookmark(after));
    }
    // The cache may have stopped or reloaded while we waited on the store.
    this.checkServing();
    if (generation !== this.generation) throw reloading();
    w.startFrom(after);
    if (after >= this.revision) this.attach(w);
    else this.catchUp(w);
  }

  private checkServing(): void {
    if (this.stopped) throw this.stopped;
    if (this.reloading) throw reloading();
  }

  /** Load, retrying with backoff until a load succeeds or the cache stops; then serve again. */
  private loadUntilDone(delayMs: number): void {
    if (this.stopped) return;
    this.loading = this.load()
      .then(
        () => {
          this.reloading = false;
          if (!this.loaded && !this.stopped) {
            this.loaded = true;
            this.resolveLoaded();
            this.release();
          }
        },
        (err: unknown) => {
          if (this.stopped) return;
          this.onError(err instanceof Error ? err : new Error(String(err)));
          setTimeout(() => this.loadUntilDone(Math.min(delayMs * 2, 30_000)), delayMs).unref();
        },
      )
      .finally(() => (this.loading = undefined));
  }

  /**
   * Read every node at one revision into a fresh map (the current one stays readable until the
   * swap), then follow the store from there. A node unchanged since the last load keeps its
   * object; subscribers are told the difference.
   */
  private async load(): Promise<void> {
    const fresh = new Map<string, FullNode>();
    let after: string | undefined;
    let revision: number | undefined;
    for (;;) {
      // Each page after a turn of the event loop (the first one too: start() returns at once).
      await yieldToIo();
      if (this.stopped) return;
      const page = await this.store.list(NODE_PREFIX, { revision, startAfter: after, limit: LOAD_PAGE });
      if (this.stopped) return;
      revision = page.revision;
      for (const kv of page.kvs) {
        const name = kv.key.slice(NODE_PREFIX.length);
        const old = this.nodes.get(name);
        fresh.set(name, old !== undefined && revisionOf(old) === kv.modRevision ? old : this.decoder.decode(kv));
      }
      after = page.kvs.at(-1)?.key;
      if (!page.more) break;
    }
    const old = this.nodes;
    this.nodes = fresh;
    this.revision = revision;
    for (const [name, prev] of old) if (!fresh.has(name)) this.notify(name, undefined, prev);
    for (const [name, node] of fresh) {
      const prev = old.get(name);
      if (prev !== node) this.notify(name, node, prev);
    }
    this.storeWatch = this.store.watch(NODE_PREFIX, revision, {
      onEvents: (events) => this.apply(events),
      onProgress: (rev) => {
        if (rev > this.revision) this.revision = rev;
        this.release();
      },
      onError: (err) => this.storeWatchFailed(err),
    });
    if (this.loaded) this.release();
  }

  /** Tell the subscribers of one change; a failing subscriber does not stop the others or the watchers. */
  private notify(name: string, node: FullNode | undefined, prev: FullNode | undefined): void {
    for (const h of this.subscribers) {
      try {
        if (node === undefined) h.onDelete?.(name, prev!);
        else if (prev === undefined) h.onAdd?.(name, node);
        else h.onUpdate?.(name, node, prev);
      } catch (err) {
        // A controller's bug, not the store's: said so, and the cache goes on.
        this.onError(new Error(`a subscriber failed on node ${JSON.stringify(name)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      }
    }
  }

  /** Resolve the waiters the cache's revision has reached. */
  private release(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.revision <= this.revision);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > this.revision);
    for (const w of ready) w.resolve();
  }

  private async listAt(revision: number): Promise<Node[]> {
    const out: Node[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.list(NODE_PREFIX, { revision, startAfter: after, limit: 5000 });
      for (const kv of page.kvs) out.push(decodeNode(kv));
      after = page.kvs.at(-1)?.key;
      if (!page.more) return out;
    }
  }

  private apply(events: WatchEvent[]): void {
    for (const ev of events) {
      const name = ev.kv.key.slice(NODE_PREFIX.length);
      const prev = this.nodes.get(name);
      const node = ev.type === "put" ? this.decoder.decode(ev.kv) : undefined;
      if (node) this.nodes.set(name, node);
      else this.nodes.delete(name);
      const change: Change = { revision: ev.kv.modRevision, name, node, prev };
      this.revision = change.revision;
      if (node !== undefined || prev !== undefined) this.notify(name, node, prev);
      this.fanOut(change);
    }
    this.release();
  }

  private fanOut(change: Change): void {
    const pinned = this.byName.get(change.name);
    if (pinned) for (const w of pinned) offer(w, change);
    for (const w of this.unindexed) offer(w, change);
  }

  private attach(w: Watcher): void {
    if (w.isEnded) return;
    // Whatever the watcher was offered so far came from its snapshot or history feed.
    w.skipThrough = w.offeredRevision;
    const name = w.filter.name;
    if (name === undefined) {
      this.unindexed.add(w);
      return;
    }
    let set = this.byName.get(name);
    if (!set) this.byName.set(name, (set = new Set()));
    set.add(w);
  }

  private detach(w: Watcher): void {
    this.catchingUp.get(w)?.cancel();
    this.catchingUp.delete(w);
    const name = w.filter.name;
    if (name === undefined) {
      this.unindexed.delete(w);
      return;
    }
    const set = this.byName.get(name);
    set?.delete(w);
    if (set?.size === 0) this.byName.delete(name);
  }

  /** Replay history from the store until the watcher reaches the cache's revision. */
  private catchUp(w: Watcher): void {
    const job = new CatchUp(this.store, w, () => {
      // Caught up: events the cache delivers at or below offeredRevision are skipped by offer().
      this.catchingUp.delete(w);
      this.attach(w);
    }, () => this.revision, this.queueLimit);
    this.catchingUp.set(w, job);
    job.resume();
  }

  private sendBookmarks(): void {
    const rev = this.revision;
    for (const w of this.allWatchers()) {
      if (!w.allowBookmarks || this.catchingUp.has(w) || w.size > 0) continue;
      // A live watcher has been offered every change up to the cache's revision.
      const at = Math.max(rev, w.offeredRevision);
      if (at > w.lastQueuedRevision) {
        w.advance(at);
        w.push(bookmark(at));
      }
    }
  }

  private storeWatchFailed(err: Error): void {
    if (this.stopped) return;
    this.onError(err);
    // The cache lost its feed (fell behind compaction, store trouble): watchers may have missed
    // events, so end them (they resume from their last revision) and reload, retrying with
    // backoff. New watches are refused with UNAVAILABLE until the reload is done.
    this.generation++;
    this.reloading = true;
    const reason = new UnavailableError("watch cache restarting; watch again from the last revision received");
    for (const w of this.allWatchers()) w.fail(reason);
    this.loadUntilDone(100);
  }

  private *allWatchers(): Iterable<Watcher> {
    yield* [...this.unindexed];
    for (const set of [...this.byName.values()]) yield* [...set];
    yield* [...this.catchingUp.keys()];
  }
}

/** Offer a live change to a watcher (skipping what its snapshot or history already covered). */
function offer(w: Watcher, change: Change): void {
  if (change.revision <= w.skipThrough) return;
  const ev = eventFor(w, change);
  if (ev) w.push(ev);
  else w.advance(change.revision);
}

function bookmark(revision: number): NodeWatchEvent {
  return { type: "BOOKMARK", node: { metadata: { ...emptyMeta, resourceVersion: formatRevision(revision) } }, revision };
}

const emptyMeta = {
  name: "",
  namespace: "",
  uid: "",
  resourceVersion: "",
  generation: 0n,
  labels: {},
  annotations: {},
  ownerReferences: [],
};

function revisionOf(node: Node): number {
  return Number(node.metadata?.resourceVersion ?? 0);
}

function reloading(): UnavailableError {
  return new UnavailableError("watch cache is reloading; retry the watch in a moment");
}
