/**
 * FleetFeed: the dashboard's view of the fleet, kept by one store watch and shared by every
 * browser. It holds one row per node, per Lease and per recent node event (src/dashboard/rows.ts),
 * cuts the changes into frames (src/dashboard/frames.ts) every `frameMs`, and keeps recent
 * frames so a browser that reconnects resumes where it stopped.
 *
 * Why its own informer over everything under /registry/ rather than the server's shared ones:
 * the stream's ids must be one ordered sequence across nodes, Leases and events, which one
 * Reflector (src/informer/) over the common prefix gives — the same list-then-watch loop, with
 * the rows the page needs as its objects. The feed starts on first use, so a server nobody
 * opens the dashboard on pays nothing.
 *
 * Contract:
 * - snapshot() answers every row as of a revision R; framesAfter(R) then yields every change
 *   after R, each once, in revision order.
 * - resume(R) for an R older than the ring reads the store's history (R, ring start] once,
 *   shared by every browser asking, and answers "relist" when R was compacted, when that
 *   history is larger than the ring's budget, or when R is newer than anything this store has
 *   (a different store).
 * - When the informer relists (it fell behind compaction), every stream ends (listeners get
 *   `reset`) and browsers resume against the new ring.
 */
import { Event } from "../gen/nodeplane/v1/event.js";
import { CompactedError } from "../errors.js";
import { decodeLease, decodeNode } from "../model/codec.js";
import { LEASE_PREFIX, NODE_PREFIX } from "../model/keys.js";
import { EVENT_PREFIX } from "../model/keys.js";
import { Reflector } from "../informer/reflector.js";
import { storeSource } from "../informer/store-source.js";
import type { KeyValue, Store, StoreWatch, WatchEvent } from "../store/store.js";
import { type Frame, type FrameBody, FrameBuilder, FrameRing } from "./frames.js";
import { type EventRow, eventRow, type LeaseRow, leaseRow, type NodeRow, nodeRow } from "./rows.js";

/** The store prefix the feed watches: nodes, Leases and events all live under it. */
const REGISTRY = "/registry/";

export interface FleetFeedOptions {
  store: Store;
  /** How long changes gather into one frame (ms). */
  frameMs?: number;
  /** Frame text kept for reconnecting browsers (bytes). */
  ringBytes?: number;
  /** Node events kept for the snapshot's event feed. */
  recentEvents?: number;
  /** Longest wait for the store's history when a browser resumes from before the ring (ms). */
  backfillTimeoutMs?: number;
  onError?: (err: Error) => void;
}

export interface Snapshot {
  rev: number;
  nodes: NodeRow[];
  leases: LeaseRow[];
  events: EventRow[];
}

/** A stream's view of the feed: told of each new frame, and when the feed starts over. */
export interface FeedListener {
  frame(f: Frame): void;
  reset(): void;
}

type Resume = { seq: number } | { relist: string };

export class FleetFeed {
  private readonly o: Required<Omit<FleetFeedOptions, "onError">> & Pick<FleetFeedOptions, "onError">;
  private readonly nodes = new Map<string, NodeRow>();
  private readonly leases = new Map<string, LeaseRow>();
  /** Recent events in order of last change (a repeat moves to the end). */
  private readonly events = new Map<string, EventRow>();
  private readonly pending = new FrameBuilder();
  private readonly listeners = new Set<FeedListener>();
  private ring: FrameRing;
  /** Every row under /registry/ the page shows (undefined for kinds it does not). */
  private readonly informer: Reflector<Change | undefined>;
  private started: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** History reads for resuming browsers, one at a time. */
  private backfills: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(opts: FleetFeedOptions) {
    this.o = {
      store: opts.store,
      frameMs: opts.frameMs ?? 250,
      ringBytes: opts.ringBytes ?? 32 * 1024 * 1024,
      recentEvents: opts.recentEvents ?? 200,
      backfillTimeoutMs: opts.backfillTimeoutMs ?? 10_000,
      onError: opts.onError,
    };
    this.ring = new FrameRing(0, this.o.ringBytes);
    this.informer = new Reflector<Change | undefined>({
      source: storeSource({ store: this.o.store, prefix: REGISTRY, decode: (kv) => toChange(kv), pageSize: 1000 }),
      onError: (err) => this.o.onError?.(err),
    });
    this.informer.subscribe({
      onAdd: (_, change, rev) => this.apply(change, rev),
      onUpdate: (_, change, __, rev) => this.apply(change, rev),
      onDelete: (_, old, rev) => this.remove(old, rev),
      onRelist: (rev) => this.restart(rev),
    });
  }

  /** Load (once) and follow the store. Resolves when the first load is done. */
  start(): Promise<void> {
    this.started ??= this.informer.start().then(() => {
      if (this.stopped) return;
      // The list came in key order: keep the most recent events, in order of last change.
      const events = [...this.events.values()].sort((a, b) => a.last - b.last || a.rev - b.rev).slice(-this.o.recentEvents);
      this.events.clear();
      for (const e of events) this.events.set(e.key, e);
      this.pending.take();
      this.ring = new FrameRing(this.informer.revision, this.o.ringBytes);
    });
    return this.started;
  }

  stop(): void {
    this.stopped = true;
    void this.informer.stop();
    clearTimeout(this.flushTimer);
    for (const l of [...this.listeners]) l.reset();
    this.listeners.clear();
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  listen(l: FeedListener): () => void {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  }

  /** Every row as of the returned revision (pending changes are cut into a frame first). */
  snapshot(): Snapshot {
    this.flush();
    return { rev: this.informer.revision, nodes: [...this.nodes.values()], leases: [...this.leases.values()], events: [...this.events.values()] };
  }

  /** The revision the feed has applied. */
  get rev(): number {
    return this.informer.revision;
  }

  frameAt(seq: number): Frame | undefined {
    return this.ring.at(seq);
  }

  get nextSeq(): number {
    return this.ring.nextSeq;
  }

  /** Bytes of frames from `seq` to the newest (a stream's lag). */
  lagBytes(seq: number): number {
    return this.ring.bytesFrom(seq);
  }

  /** Where a browser that has every change up to `after` continues (reading history if needed). */
  async resume(after: number): Promise<Resume> {
    await this.start();
    if (after > this.informer.revision) {
      return { relist: `revision ${after} is newer than the server's ${this.informer.revision} (a different or restored store)` };
    }
    if (after < this.ring.from) {
      const done = this.backfills.then(() => this.backfill(after));
      this.backfills = done.catch(() => undefined);
      const failed = await done;
      if (failed) return { relist: failed };
    }
    return { seq: this.ring.seqAfter(after) };
  }

  /** A row changed. Changes the ring's start covers (a list's contents) are not news. */
  private apply(change: Change | undefined, rev: number): void {
    if (!change) return;
    const news = this.informer.hasSynced && rev > this.ring.from;
    switch (change.kind) {
      case "node":
        this.nodes.set(change.row.name, change.row);
        if (news) this.pending.node(change.row);
        break;
      case "lease":
        this.leases.set(change.row.name, change.row);
        if (news) this.pending.lease(change.row);
        break;
      case "event":
        this.events.delete(change.row.key);
        this.events.set(change.row.key, change.row);
        if (this.informer.hasSynced && this.events.size > this.o.recentEvents) this.events.delete(this.events.keys().next().value!);
        if (news) this.pending.event(change.row);
        break;
    }
    if (news) this.armFlush();
  }

  /** A node or Lease is gone (an expired event leaves the browser's feed by age: not news). */
  private remove(old: Change | undefined, rev: number): void {
    if (old?.kind !== "node" && old?.kind !== "lease") return;
    (old.kind === "node" ? this.nodes : this.leases).delete(old.row.name);
    if (!this.informer.hasSynced || rev <= this.ring.from) return;
    this.pending.removed({ kind: old.kind, name: old.row.name, rev });
    this.armFlush();
  }

  private armFlush(): void {
    if (!this.pending.isEmpty && this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flush(), this.o.frameMs);
      this.flushTimer.unref();
    }
  }

  /**
   * The informer is about to replace its contents (it fell behind compaction): streams end,
   * browsers reconnect and resume against a ring that starts at the new list's revision.
   */
  private restart(rev: number): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pending.take();
    this.ring = new FrameRing(rev, this.o.ringBytes);
    for (const l of [...this.listeners]) l.reset();
    this.listeners.clear();
  }

  /** Cut the pending changes into a frame and tell every stream. */
  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.isEmpty) return;
    const upTo = this.pending.last;
    const frame = this.ring.append(this.pending.take(), upTo);
    for (const l of [...this.listeners]) l.frame(frame);
  }

  /**
   * Read the store's history (after, ring start] into frames in front of the ring. Answers a
   * reason to relist instead when that is impossible or too big.
   */
  private backfill(after: number): Promise<string | undefined> {
    const until = this.ring.from;
    if (after >= until) return Promise.resolve(undefined);
    const budget = this.o.ringBytes - this.ring.size;
    const tooBig = `the changes since revision ${after} exceed what the server keeps for reconnecting browsers`;
    return new Promise((resolve) => {
      const bodies: { body: FrameBody; to: number }[] = [];
      const builder = new FrameBuilder();
      let bytes = 0;
      let finished = false;
      const finish = (why?: string): void => {
        let reason = why;
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        w?.cancel();
        if (reason === undefined && builder.size > 0) {
          const body = builder.take();
          bodies.push({ to: until, body });
          bytes += JSON.stringify(body).length;
          if (bytes > budget) reason = tooBig;
        }
        // The ring may have been reset meanwhile (a relist): then the history no longer joins it.
        if (reason === undefined && this.ring.from !== until) reason = "the server's stream restarted meanwhile";
        if (reason === undefined) this.ring.prepend(after, bodies);
        // Frame text is a little longer than the rows counted: the oldest frames may not have fit.
        if (reason === undefined && this.ring.from > after) reason = tooBig;
        resolve(reason);
      };
      const timer = setTimeout(() => finish(`the store's history after revision ${after} did not arrive in time`), this.o.backfillTimeoutMs);
      const cut = (to: number): void => {
        const body = builder.take();
        bodies.push({ to, body });
        bytes += JSON.stringify(body).length;
        if (bytes > budget) finish(tooBig);
      };
      let w: StoreWatch | undefined;
      w = this.o.store.watch(REGISTRY, after, {
        // Each call holds whole revisions: frames are cut only between revisions.
        onEvents: (evs) => {
          if (finished) return;
          for (const ev of evs) {
            if (ev.kv.modRevision > until) break;
            const change = historyChange(ev);
            if (change?.kind === "node") builder.node(change.row);
            else if (change?.kind === "lease") builder.lease(change.row);
            else if (change?.kind === "gone") builder.removed(change.gone);
            else if (change?.kind === "event") builder.event(change.row);
          }
          const last = Math.min(evs.at(-1)!.kv.modRevision, until);
          if (last >= until) return finish();
          if (builder.size >= 2000) cut(last);
        },
        onProgress: (r) => {
          if (r >= until) finish();
        },
        onError: (err) =>
          finish(err instanceof CompactedError ? `revision ${after} was compacted: ${err.message}` : `the store's history is unavailable: ${err.message}`),
      });
      if (finished) w.cancel();
    });
  }

}

/** A stored object as the dashboard shows it. */
type Change = { kind: "node"; row: NodeRow } | { kind: "lease"; row: LeaseRow } | { kind: "event"; row: EventRow };

/** The row of a stored object (undefined: a kind the dashboard does not show). */
function toChange(kv: KeyValue): Change | undefined {
  if (kv.key.startsWith(NODE_PREFIX)) return { kind: "node", row: nodeRow(decodeNode(kv)) };
  if (kv.key.startsWith(LEASE_PREFIX)) return { kind: "lease", row: leaseRow(decodeLease(kv)) };
  if (kv.key.startsWith(EVENT_PREFIX)) return { kind: "event", row: eventRow(decodeEvent(kv)) };
  return undefined;
}

/** What a store event in history means to the dashboard (undefined: nothing it shows). */
function historyChange(ev: WatchEvent): Change | { kind: "gone"; gone: { kind: "node" | "lease"; name: string; rev: number } } | undefined {
  const key = ev.kv.key;
  if (ev.type === "put") return toChange(ev.kv);
  const rev = ev.kv.modRevision;
  if (key.startsWith(NODE_PREFIX)) return { kind: "gone", gone: { kind: "node", name: key.slice(NODE_PREFIX.length), rev } };
  if (key.startsWith(LEASE_PREFIX)) return { kind: "gone", gone: { kind: "lease", name: key.slice(LEASE_PREFIX.length), rev } };
  // An expired event leaves the browser's feed by age; its deletion is not news.
  return undefined;
}

function decodeEvent(kv: KeyValue): Event {
  const ev = Event.decode(kv.value);
  ev.metadata = { ...ev.metadata!, resourceVersion: String(kv.modRevision) };
  return ev;
}
