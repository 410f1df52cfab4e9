/**
 * WatchCache: fans each change of the shared node informer out to the watchers it concerns.
 * Watchers pinned to one node by `metadata.name` are indexed by name, so a change costs
 * O(watchers it matches), not O(watchers). A watcher starting at an older revision first catches
 * up — from the window of recent changes when it reaches back far enough (src/watch/recent.ts),
 * else from the store's history (its own store watch, paused while its queue is full) — then
 * joins the live feed. A watcher pinned to one node that has not changed since its revision
 * joins the live feed at once, however old the revision (the usual case for a pinned watcher
 * resuming from its last bookmark on another replica).
 *
 * The nodes themselves, their loading (in pages, while the server answers calls), and following
 * the store are the node informer's (src/informer/): the watchers, the controllers and the
 * dashboard read the same decoded, frozen nodes. A watch opened before the informer has synced
 * waits for it, starting from the revision it asked for or else the store's revision when it
 * arrived (then caught up from history). When the informer relists (it fell behind compaction),
 * changes in between were not seen one by one: every watcher is ended with UNAVAILABLE and
 * resumes from its last revision.
 */
import { InvalidError, ResourceExhaustedError, UnavailableError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { NodeInformer } from "../informer/shared.js";
import { decodeNode } from "../model/codec.js";
import type { NodeFilter } from "../model/filter.js";
import { NODE_PREFIX } from "../model/keys.js";
import { formatRevision, revisionOf } from "../model/revision.js";
import { pages } from "../store/pages.js";
import type { Store } from "../store/store.js";
import { type Change, CatchUp, eventFor } from "./catchup.js";
import { RecentChanges } from "./recent.js";
import { type NodeWatchEvent, Watcher } from "./watcher.js";

export interface WatchCacheOptions {
  /** For history (catch-up, initial events at an older revision) and the current revision. */
  store: Store;
  /** Every node, kept current by the informer; the cache only reads it. */
  nodes: NodeInformer;
  /** Per-watcher queue bound (events). */
  queueLimit?: number;
  /** How often idle watchers that allow bookmarks get one (ms). */
  bookmarkIntervalMs?: number;
  /** Most watchers at once. */
  maxWatchers?: number;
  /** Recent node changes kept for watchers resuming from memory (default 4,096; 0 = none). */
  historySize?: number;
}

export interface WatchRequest {
  /** Deliver events after this revision; undefined = from now. */
  afterRevision?: number;
  filter: NodeFilter;
  sendInitialEvents: boolean;
  allowBookmarks: boolean;
}

export class WatchCache {
  private readonly store: Store;
  private readonly nodes: NodeInformer;
  private readonly queueLimit: number;
  private readonly maxWatchers: number;
  private readonly bookmarkIntervalMs: number;
  private readonly byName = new Map<string, Set<Watcher>>();
  private readonly unindexed = new Set<Watcher>();
  private readonly catchingUp = new Map<Watcher, CatchUp>();
  private readonly recent: RecentChanges;
  /** Open watchers, counted from the moment watch() accepts one. */
  private open = 0;
  /** Bumped on every relist: a watcher that started before one must not join after it. */
  private generation = 0;
  private unsubscribe: (() => void) | undefined;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private stopped: Error | undefined;

  constructor(opts: WatchCacheOptions) {
    this.store = opts.store;
    this.nodes = opts.nodes;
    this.queueLimit = opts.queueLimit ?? 1000;
    this.maxWatchers = opts.maxWatchers ?? 100_000;
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 60_000;
    this.recent = new RecentChanges(opts.historySize ?? 4096);
  }

  /** Follow the node informer (which the caller starts). Resolves once it has synced. */
  start(): Promise<void> {
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), this.bookmarkIntervalMs);
    this.bookmarkTimer.unref();
    // Subscribed before the informer's first list: its adds reach no watcher (none attaches
    // before it has synced) and cost a lookup each.
    this.unsubscribe = this.nodes.subscribe({
      onAdd: (name, node, revision, stored) => this.fanOut({ revision, name, node, prev: undefined, stored }),
      onUpdate: (name, node, prev, revision, stored) => this.fanOut({ revision, name, node, prev, stored }),
      onDelete: (name, prev, revision) => this.fanOut({ revision, name, node: undefined, prev }),
      onRelist: (revision) => this.relisted(revision),
    });
    return this.nodes.synced().then(() => this.recent.reset(this.nodes.revision));
  }

  /** End every watcher with `reason` (UNAVAILABLE on shutdown) and stop following the informer. */
  async stop(reason: Error = new UnavailableError("server is shutting down; watch again from the last revision received")): Promise<void> {
    if (this.stopped) return;
    this.stopped = reason;
    clearInterval(this.bookmarkTimer);
    this.unsubscribe?.();
    for (const w of this.allWatchers()) w.fail(reason);
  }

  get watcherCount(): number {
    return this.open;
  }

  /** Whether the node informer has loaded every node. */
  get isLoaded(): boolean {
    return this.nodes.hasSynced;
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
    if (!this.nodes.hasSynced) {
      // Not loaded yet: start where the caller asked, else at the store's revision now, once loaded.
      const afterRevision = req.afterRevision ?? (await this.store.currentRevision());
      await this.nodes.synced();
      this.checkServing();
      req = { ...req, afterRevision };
    }
    const after = req.afterRevision;
    if (after === undefined) {
      // From now: the cache's state is the start (all synchronous: no change can slip in).
      if (req.sendInitialEvents) {
        for (const [, node] of this.nodes.entries()) {
          if (req.filter.matches(node)) w.pushInitial({ type: "ADDED", node, revision: revisionOf(node) });
        }
        w.pushInitial(bookmark(this.nodes.revision));
      }
      w.startFrom(this.nodes.revision);
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
    // Memory may still hold changes the store has compacted away: a revision below the compaction
    // is not served from it, so that it ends with OUT_OF_RANGE as the store's replay says.
    const compacted = after < this.nodes.revision ? await this.store.compactRevision() : 0;
    // The cache may have stopped or reloaded while we waited on the store.
    this.checkServing();
    if (generation !== this.generation) throw reloading();
    w.startFrom(after);
    if (after >= this.nodes.revision || (after >= compacted && (this.unchangedSince(w, after) || this.replayRecent(w, after)))) this.attach(w);
    else this.catchUp(w);
  }

  /** A watcher pinned to a node that exists and has not changed since `after`: nothing to replay. */
  private unchangedSince(w: Watcher, after: number): boolean {
    const name = w.filter.name;
    const node = name === undefined ? undefined : this.nodes.get(name);
    return node !== undefined && revisionOf(node) <= after;
  }

  /** Replay the recent changes above `after` if the window reaches back that far. */
  private replayRecent(w: Watcher, after: number): boolean {
    const changes = this.recent.since(after);
    if (changes === undefined) return false;
    for (const change of changes) {
      const ev = eventFor(w, change);
      if (ev) w.pushHistory(ev);
      else w.advance(change.revision);
    }
    w.advance(this.nodes.revision);
    return true;
  }

  private checkServing(): void {
    if (this.stopped) throw this.stopped;
  }

  /**
   * The informer listed again: changes since its last revision were not seen one by one, so
   * end every watcher (each resumes from its last revision, caught up from history).
   */
  private relisted(revision: number): void {
    this.generation++;
    this.recent.reset(revision);
    const reason = new UnavailableError("watch cache restarting; watch again from the last revision received");
    for (const w of this.allWatchers()) w.fail(reason);
  }

  private async listAt(revision: number): Promise<Node[]> {
    const out: Node[] = [];
    for await (const page of pages(this.store, NODE_PREFIX, { revision, limit: 5000 })) for (const kv of page.kvs) out.push(decodeNode(kv));
    return out;
  }

  private fanOut(change: Change): void {
    this.recent.add(change);
    const pinned = this.byName.get(change.name);
    if (pinned) for (const w of pinned) offer(w, change);
    for (const w of this.unindexed) offer(w, change);
    // The events made now carry the stored bytes until they are sent; the change, kept in the
    // window of recent changes, does not (an event made from it later is encoded). Nor does it
    // keep the events themselves: the watchers' queues hold those until they are written, and
    // the window would keep them, and their encoded bytes (watch-wire.ts), for seconds, long
    // enough to reach the old generation (external memory, which starts V8's full
    // collections). A watcher resuming from the window gets events made anew, shared by every
    // watcher replaying that change.
    change.stored = undefined;
    change.events = undefined;
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
    }, () => this.nodes.revision, this.queueLimit);
    this.catchingUp.set(w, job);
    job.resume();
  }

  private sendBookmarks(): void {
    const rev = this.nodes.revision;
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

function reloading(): UnavailableError {
  return new UnavailableError("watch cache is reloading; retry the watch in a moment");
}
