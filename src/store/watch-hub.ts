/**
 * Store-level watch fan-out for a backend with one writer in this process (SqliteStore).
 *
 * A watcher is either catching up or live (etcd's unsynced / synced watchers). A new watcher
 * catches up: on later event-loop turns it reads its history from the backend a page at a
 * time, whole revisions per page, up to the revision that is current at that moment. When a
 * read finds nothing more, the watcher turns live in that same synchronous step, so no
 * commit can fall between the history it read and the live events it will get: no gap, no
 * duplicate. Live watchers get each commit's events through `publish`, which the backend
 * calls after the commit, from its own event-loop turn (never inside a caller's `txn()`).
 *
 * Live watchers are grouped by prefix: a commit costs one filter pass per distinct prefix.
 * There are few store watches (the watch cache fans out to clients), so that is cheap.
 *
 * Listeners must not modify the events they get (watchers of one prefix share them) and
 * must not throw. If one does, its watch is cancelled and the error is rethrown
 * from a microtask (an uncaught exception, as for an EventEmitter listener): a bug must be
 * loud, but it must not break the commit loop or the other watchers.
 */
import { CompactedError, UnavailableError } from "../errors.js";
import type { StoreWatch, WatchEvent, WatchListener } from "./store.js";

/** What the hub needs from the backend. Every call is synchronous. */
export interface WatchSource {
  currentRevision(): number;
  compactRevision(): number;
  /** Changes under `prefix` with after < revision <= until, in order, at most `limit`. */
  readHistory(prefix: string, after: number, until: number, limit: number): WatchEvent[];
}

class HubWatch implements StoreWatch {
  /** Every event up to this revision has been delivered (or reported through onProgress). */
  rev: number;
  ended = false;

  constructor(
    readonly prefix: string,
    readonly listener: WatchListener,
    after: number,
    private readonly detach: (w: HubWatch) => void,
  ) {
    this.rev = after;
  }

  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.detach(this);
  }
}

export class WatchHub {
  private readonly live = new Map<string, Set<HubWatch>>();
  private readonly catchingUp = new Set<HubWatch>();
  private liveCount = 0;
  private closedWith: Error | undefined;

  constructor(
    private readonly source: WatchSource,
    private readonly pageSize: number,
  ) {}

  /** True when some watcher would receive published events: the backend may skip building them otherwise. */
  get hasLiveWatchers(): boolean {
    return this.liveCount > 0;
  }

  watch(prefix: string, after: number, listener: WatchListener): StoreWatch {
    const w = new HubWatch(prefix, listener, after, (x) => this.detach(x));
    const closed = this.closedWith;
    if (closed) {
      w.ended = true;
      setImmediate(() => guard(w, () => listener.onError(closed)));
      return w;
    }
    this.catchingUp.add(w);
    setImmediate(() => this.catchUp(w));
    return w;
  }

  /**
   * Deliver a commit's events (in revision then op order) to live watchers; watchers that
   * match none learn through onProgress that the store reached `revision`.
   */
  publish(events: WatchEvent[], revision: number): void {
    for (const [prefix, group] of this.live) {
      const matched = prefix === "" ? events : events.filter((e) => e.kv.key.startsWith(prefix));
      for (const w of group) {
        if (w.ended) continue;
        // A watcher that asked for a future revision skips events up to it.
        const fresh = matched.length > 0 && matched[0]!.kv.modRevision <= w.rev ? matched.filter((e) => e.kv.modRevision > w.rev) : matched;
        if (fresh.length > 0) {
          w.rev = revision;
          guard(w, () => w.listener.onEvents(fresh));
        } else if (revision > w.rev) {
          w.rev = revision;
          guard(w, () => w.listener.onProgress(revision));
        }
      }
    }
  }

  /** End every watch with `err`; later watches end with it at once. Call from a turn of its own. */
  closeAll(err: Error): void {
    this.closedWith = err;
    const all = [...this.catchingUp];
    for (const group of this.live.values()) all.push(...group);
    for (const w of all) this.end(w, err);
  }

  private end(w: HubWatch, err: Error): void {
    if (w.ended) return;
    w.cancel();
    guard(w, () => w.listener.onError(err));
  }

  private detach(w: HubWatch): void {
    this.catchingUp.delete(w);
    const group = this.live.get(w.prefix);
    if (group?.delete(w)) {
      this.liveCount--;
      if (group.size === 0) this.live.delete(w.prefix);
    }
  }

  /** One page of history; then either live (nothing more up to head) or another turn. */
  private catchUp(w: HubWatch): void {
    if (w.ended) return;
    let events: WatchEvent[];
    let head: number;
    let done: boolean;
    try {
      // Compaction records its revision before deleting anything, so this check covers rows
      // a compaction in progress may already have removed.
      const compacted = this.source.compactRevision();
      if (w.rev < compacted) return this.end(w, new CompactedError(w.rev, compacted));
      head = this.source.currentRevision();
      events = this.source.readHistory(w.prefix, w.rev, head, this.pageSize);
      done = events.length < this.pageSize;
      if (!done) events = this.wholeRevisions(w.prefix, events);
    } catch (err) {
      return this.end(w, new UnavailableError("storage unavailable: reading watch history failed; retry", { cause: err }));
    }
    if (events.length > 0) {
      w.rev = events[events.length - 1]!.kv.modRevision;
      guard(w, () => w.listener.onEvents(events));
      if (w.ended) return;
    }
    if (!done) {
      setImmediate(() => this.catchUp(w));
      return;
    }
    this.catchingUp.delete(w);
    let group = this.live.get(w.prefix);
    if (!group) this.live.set(w.prefix, (group = new Set()));
    group.add(w);
    this.liveCount++;
    if (head > w.rev) {
      w.rev = head;
      guard(w, () => w.listener.onProgress(head));
    }
  }

  /**
   * A full page may end inside a revision: drop that revision's rows (the next page starts
   * with it), unless the page is all one revision, which is then read whole.
   */
  private wholeRevisions(prefix: string, page: WatchEvent[]): WatchEvent[] {
    const last = page[page.length - 1]!.kv.modRevision;
    if (page[0]!.kv.modRevision === last) return this.source.readHistory(prefix, last - 1, last, -1);
    let end = page.length;
    while (page[end - 1]!.kv.modRevision === last) end--;
    return page.slice(0, end);
  }
}

/** Call a listener; if it throws, cancel its watch and rethrow from a microtask (see above). */
export function guard(w: StoreWatch, call: () => void): void {
  try {
    call();
  } catch (err) {
    w.cancel();
    queueMicrotask(() => {
      throw err;
    });
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
