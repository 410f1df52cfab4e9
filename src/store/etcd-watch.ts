/**
 * Store watches on etcd: etcd's own watch, fanned out in this process, with sound progress.
 *
 * Every etcd watch here covers the store's whole key space (the prefix range, the meta key
 * included) and the store filters by watch prefix itself. That is what makes progress sound:
 * such a stream sees every revision the cluster writes under the prefix, so when it has
 * delivered revision R, every watcher's events up to R have been delivered too, whichever
 * prefix it asked for, and the watchers it had nothing for learn `onProgress(R)`. A watch on
 * the narrower prefix alone could not say so: etcd 3.4 sends a watcher progress only every
 * 10 minutes by default, and its on-demand progress request is not ordered with the events
 * (fixed only in 3.4.25).
 *
 * One such stream, the feed, serves every live watcher (etcd's synced watchers); a watcher
 * that starts behind the feed catches up on a stream of its own from its revision, and joins
 * the feed once it has reached the feed's revision (both streams see the same revisions, so
 * the join has no gap; what the feed delivers at or below the watcher's revision is skipped).
 * A catch-up stream is complete by itself: if there is no feed, it becomes the feed. The feed
 * stops when no live watcher is left.
 *
 * Revisions written outside the prefix (another cluster or tool sharing the etcd) reach no
 * stream. When currentRevision() has answered such a revision and a stream stays behind it,
 * silent, for `checkMs`, the store writes its meta key (`tick`): that revision is seen by
 * every stream and moves them all past it.
 *
 * etcd3 resumes a watch after a lost connection from the header revision of the last message
 * it got, which for a catching-up watcher can be ahead of the events delivered so far (etcd
 * sends history in batches whose header is the current revision). Each stream therefore sets
 * the resume revision itself after every message: the revision it has delivered, plus one.
 *
 * A stream that etcd cancels ends its watchers with CompactedError (etcd cancels a watch from
 * a compacted revision with an empty reason, and etcd3 drops the compact revision): clients
 * relist, which is right whatever the reason was.
 */
import type { Etcd3, IEvent, IWatchResponse, Watcher } from "etcd3";
import { CompactedError, NodeplaneError, UnavailableError } from "../errors.js";
import type { StoreWatch, WatchEvent, WatchListener } from "./store.js";
import { guard, messageOf } from "./watch-hub.js";

export interface WatchHubDeps {
  client: Etcd3;
  /** The etcd range of the store's key space. */
  range: { start: Buffer; end: Buffer };
  /** The store event for an etcd event, or undefined for the store's meta key. */
  decode(ev: IEvent): WatchEvent | undefined;
  /** The store's compact revision (the marker); rejects with UnavailableError. */
  compactRevision(): Promise<number>;
  currentRevision(): Promise<number>;
  /** Write the meta key, so that every stream sees a new revision. */
  tick(): Promise<void>;
  /** How long a stream may stay silent behind a known revision before a tick, ms. */
  checkMs: number;
}

class EtcdWatch implements StoreWatch {
  ended = false;
  /** Its own stream while catching up. */
  stream: RootStream | undefined;

  constructor(
    readonly prefix: string,
    readonly listener: WatchListener,
    /** Every event up to this revision has been delivered (or reported through onProgress). */
    public rev: number,
    private readonly detach: (w: EtcdWatch) => void,
  ) {}

  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.detach(this);
  }
}

interface StreamHandlers {
  /** The events of whole revisions (none: only revisions of the meta key), up to `revision`. */
  batch(stream: RootStream, events: WatchEvent[], revision: number): void;
  failed(stream: RootStream, err: Error): void;
}

/** One etcd watch over the whole key space, from a revision on. */
class RootStream {
  /** Every change up to this revision has been handed to the handlers. */
  rev: number;
  /** A message arrived since the last stall check (a new stream gets one interval's grace). */
  heard = true;
  /** The catching-up watcher this stream serves; undefined for the feed. */
  owner: EtcdWatch | undefined;
  private stopped = false;
  private readonly watcher: Watcher;

  constructor(deps: WatchHubDeps, after: number, owner: EtcdWatch | undefined, private readonly handlers: StreamHandlers) {
    this.rev = after;
    this.owner = owner;
    this.watcher = deps.client.watch().inRange(deps.range).withPreviousKV().startRevision(String(after + 1)).watcher();
    // etcd3's own listeners (registered first) set the resume revision from headers; ours run after them.
    this.watcher.on("connected", () => this.fixResume());
    this.watcher.on("data", (res) => this.onData(res, deps.decode));
    this.watcher.on("error", (err) => {
      if (this.stopped) return;
      this.stopped = true;
      this.handlers.failed(this, err);
    });
    // Lost connections are etcd3's to restore (from fixResume's revision); nothing to do here.
    this.watcher.on("disconnected", () => {});
  }

  cancel(): void {
    if (this.stopped) return;
    this.stopped = true;
    void this.watcher.cancel().catch(() => {});
  }

  private onData(res: IWatchResponse, decode: WatchHubDeps["decode"]): void {
    if (this.stopped) return;
    this.heard = true;
    let last = this.rev;
    const events: WatchEvent[] = [];
    if (res.events.length > 0) {
      for (const ev of res.events) {
        const rev = Number(ev.kv.mod_revision);
        if (rev <= this.rev) continue;
        last = rev;
        const e = decode(ev);
        if (e) events.push(e);
      }
    } else {
      // A progress notification: etcd sends it only to a watcher that has caught up.
      last = Math.max(last, Number(res.header.revision));
    }
    const advanced = last > this.rev;
    if (advanced) this.rev = last;
    this.fixResume();
    if (advanced) this.handlers.batch(this, events, last);
  }

  /** etcd3 resumes from the request's start revision: keep it at what was delivered, plus one. */
  private fixResume(): void {
    this.watcher.request.start_revision = String(this.rev + 1);
  }
}

export class EtcdWatchHub {
  private feed: RootStream | undefined;
  private readonly live = new Map<string, Set<EtcdWatch>>();
  private readonly catchingUp = new Set<EtcdWatch>();
  /** Waiting for the compaction check. */
  private readonly starting = new Set<EtcdWatch>();
  /** The highest revision currentRevision() has answered. */
  private known = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private closedWith: Error | undefined;
  private readonly handlers: StreamHandlers = {
    batch: (stream, events, revision) => this.onBatch(stream, events, revision),
    failed: (stream, err) => this.onFailed(stream, err),
  };

  constructor(private readonly deps: WatchHubDeps) {}

  watch(prefix: string, after: number, listener: WatchListener): StoreWatch {
    const w = new EtcdWatch(prefix, listener, after, (x) => this.detach(x));
    const closed = this.closedWith;
    if (closed) {
      w.ended = true;
      setImmediate(() => guard(w, () => listener.onError(closed)));
      return w;
    }
    this.starting.add(w);
    this.armTimer();
    void this.begin(w);
    return w;
  }

  /** currentRevision() answered `revision`: streams behind it will be moved past it (see above). */
  noteRevision(revision: number): void {
    if (revision > this.known) this.known = revision;
  }

  /** End every watch with `err`; later watches end with it at once. */
  closeAll(err: Error): void {
    this.closedWith = err;
    const all = [...this.starting, ...this.catchingUp];
    for (const group of this.live.values()) all.push(...group);
    for (const w of all) this.end(w, err);
    this.feed?.cancel();
    this.feed = undefined;
    this.stopTimer();
  }

  private async begin(w: EtcdWatch): Promise<void> {
    let compacted: number;
    try {
      compacted = await this.deps.compactRevision();
    } catch (err) {
      return this.end(w, unavailable(err));
    }
    if (w.ended) return;
    this.starting.delete(w);
    if (w.rev < compacted) return this.end(w, new CompactedError(w.rev, compacted));
    if (!this.feed) {
      this.feed = new RootStream(this.deps, w.rev, undefined, this.handlers);
      this.addLive(w);
    } else if (w.rev >= this.feed.rev) {
      this.addLive(w);
    } else {
      this.catchingUp.add(w);
      w.stream = new RootStream(this.deps, w.rev, w, this.handlers);
    }
  }

  private addLive(w: EtcdWatch): void {
    let group = this.live.get(w.prefix);
    if (!group) this.live.set(w.prefix, (group = new Set()));
    group.add(w);
  }

  private onBatch(stream: RootStream, events: WatchEvent[], revision: number): void {
    if (stream === this.feed) {
      for (const [prefix, group] of this.live) {
        const matched = prefix === "" ? events : events.filter((e) => e.kv.key.startsWith(prefix));
        for (const w of group) deliver(w, matched, revision);
      }
      return;
    }
    const w = stream.owner;
    if (!w || w.ended) return;
    deliver(w, w.prefix === "" ? events : events.filter((e) => e.kv.key.startsWith(w.prefix)), revision);
    if (!w.ended) this.maybeJoin(w, stream);
  }

  /** A catching-up watcher that has reached the feed joins it; with no feed, its stream becomes the feed. */
  private maybeJoin(w: EtcdWatch, stream: RootStream): void {
    if (this.feed && w.rev < this.feed.rev) return;
    this.catchingUp.delete(w);
    w.stream = undefined;
    if (this.feed) {
      stream.cancel();
    } else {
      stream.owner = undefined;
      this.feed = stream;
    }
    this.addLive(w);
  }

  private onFailed(stream: RootStream, err: Error): void {
    let victims: EtcdWatch[];
    if (stream === this.feed) {
      this.feed = undefined;
      victims = [];
      for (const group of this.live.values()) victims.push(...group);
      this.live.clear();
    } else {
      victims = stream.owner ? [stream.owner] : [];
      if (stream.owner) this.catchingUp.delete(stream.owner);
    }
    for (const w of victims) w.stream = undefined;
    void this.cancelled(err).then((reason) => {
      for (const w of victims) this.end(w, reason(w.rev));
    });
  }

  /** The error for watchers whose stream etcd cancelled: compacted, naming a revision still available. */
  private async cancelled(cause: Error): Promise<(rev: number) => NodeplaneError> {
    try {
      const compacted = await this.deps.compactRevision();
      const current = await this.deps.currentRevision();
      // Compacted by someone else than a store (the marker is behind): the current revision is available.
      return (rev) => new CompactedError(rev, compacted > rev ? compacted : current);
    } catch (err) {
      const e = unavailable(err);
      return () => new UnavailableError(`${e.message} (the store watch was cancelled: ${messageOf(cause) || "no reason given"})`);
    }
  }

  private end(w: EtcdWatch, err: Error): void {
    if (w.ended) return;
    w.cancel();
    guard(w, () => w.listener.onError(err));
  }

  private detach(w: EtcdWatch): void {
    this.starting.delete(w);
    this.catchingUp.delete(w);
    w.stream?.cancel();
    w.stream = undefined;
    const group = this.live.get(w.prefix);
    if (group?.delete(w) && group.size === 0) this.live.delete(w.prefix);
    if (this.live.size === 0 && this.feed) {
      this.feed.cancel();
      this.feed = undefined;
    }
    if (this.starting.size === 0 && this.catchingUp.size === 0 && this.live.size === 0) this.stopTimer();
  }

  private armTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.checkStalled(), this.deps.checkMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Tick when a stream has been silent for a whole interval while behind a revision known to exist. */
  private checkStalled(): void {
    const target = Math.max(this.known, this.feed?.rev ?? 0);
    let stalled = false;
    for (const s of [this.feed, ...[...this.catchingUp].map((w) => w.stream)]) {
      if (!s) continue;
      if (!s.heard && s.rev < target) stalled = true;
      s.heard = false;
    }
    if (!stalled || this.ticking) return;
    this.ticking = true;
    // A failed tick is retried at the next check that still finds a stall.
    void this.deps
      .tick()
      .catch(() => {})
      .finally(() => (this.ticking = false));
  }
}

/** Hand a watcher the events above its revision, and progress up to `revision`. */
function deliver(w: EtcdWatch, events: WatchEvent[], revision: number): void {
  if (w.ended) return;
  // A watcher that joined at a revision the stream had not reached yet skips what it has.
  const fresh = events.length > 0 && events[0]!.kv.modRevision <= w.rev ? events.filter((e) => e.kv.modRevision > w.rev) : events;
  if (fresh.length > 0) {
    w.rev = fresh[fresh.length - 1]!.kv.modRevision;
    guard(w, () => w.listener.onEvents(fresh));
    if (w.ended) return;
  }
  // A batch of several revisions may end with some outside the prefix.
  if (revision > w.rev) {
    w.rev = revision;
    guard(w, () => w.listener.onProgress(revision));
  }
}

function unavailable(err: unknown): UnavailableError {
  if (err instanceof UnavailableError) return err;
  return new UnavailableError("storage unavailable: starting a watch failed; retry", { cause: err });
}
