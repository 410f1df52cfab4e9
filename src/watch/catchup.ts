/**
 * Catch-up of a watcher that starts at an older revision than the watch cache's: its own replay
 * of the store's history, until it reaches the cache's revision and joins the live feed. Also
 * the Kubernetes rules for which event a watcher sees for a change (shared with the live feed).
 */
import { CompactedError, UnavailableError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { decodeNode } from "../model/codec.js";
import { formatRevision } from "../model/revision.js";
import { NODE_PREFIX } from "../model/keys.js";
import type { Store, StoreWatch, WatchEvent } from "../store/store.js";
import type { NodeEventType, NodeWatchEvent, Watcher } from "./watcher.js";

type ChangeEventType = Exclude<NodeEventType, "BOOKMARK">;

/** One change of one node, as the cache saw it. */
export interface Change {
  revision: number;
  name: string;
  node: Node | undefined;
  prev: Node | undefined;
  /** `node`'s bytes as stored, when the informer had them, during its fan-out (see makeEvent). */
  stored?: Uint8Array;
  /**
   * The events made for this change so far, one per type, shared by every watcher that gets
   * that type (so the server encodes each once: src/server/watch-wire.ts). Dropped once the
   * change is fanned out (see WatchCache.fanOut); a replay from the window of recent changes
   * makes them again.
   */
  events?: Partial<Record<ChangeEventType, NodeWatchEvent>>;
}

/**
 * The event a watcher with this filter sees for a change, if any (Kubernetes' rules). Every
 * watcher that sees the same type for a change gets the same (immutable) event object.
 */
export function eventFor(w: Watcher, change: Change): NodeWatchEvent | undefined {
  const now = change.node !== undefined && w.filter.matches(change.node);
  const was = change.prev !== undefined && w.filter.matches(change.prev);
  const type: ChangeEventType | undefined = now ? (was ? "MODIFIED" : "ADDED") : was ? "DELETED" : undefined;
  if (type === undefined) return undefined;
  const events = (change.events ??= {});
  return (events[type] ??= makeEvent(type, change));
}

function makeEvent(type: ChangeEventType, change: Change): NodeWatchEvent {
  if (type !== "DELETED") return { type, node: change.node!, revision: change.revision, stored: change.stored };
  // A node that left the selector (or was deleted) arrives as DELETED carrying its previous
  // state stamped with the event's revision, as Kubernetes' watch cache does.
  const prev = change.prev!;
  const node = { ...prev, metadata: { ...prev.metadata!, resourceVersion: formatRevision(change.revision) } };
  return { type, node, revision: change.revision };
}

/**
 * A watcher's replay of store history. History events do not count against the live queue
 * limit; instead the replay pauses (cancels its store watch) while more than `limit` events
 * wait, and resumes from the last revision offered once the consumer has drained them.
 */
export class CatchUp {
  private storeWatch: StoreWatch | undefined;
  private done = false;

  constructor(
    private readonly store: Store,
    private readonly w: Watcher,
    private readonly caughtUp: () => void,
    private readonly cacheRevision: () => number,
    private readonly limit: number,
  ) {}

  resume(): void {
    if (this.done || this.storeWatch || this.w.isEnded) return;
    const from = this.w.offeredRevision;
    this.w.skipThrough = from;
    this.storeWatch = this.store.watch(NODE_PREFIX, from, {
      onEvents: (events) => this.onEvents(events),
      onProgress: (rev) => {
        this.w.advance(rev);
        this.check();
      },
      onError: (err) => {
        if (err instanceof CompactedError || err instanceof UnavailableError) this.w.fail(err);
        else this.w.fail(new UnavailableError("watch history unavailable; watch again from the last revision received"));
      },
    });
  }

  cancel(): void {
    this.done = true;
    this.storeWatch?.cancel();
    this.storeWatch = undefined;
  }

  private onEvents(events: WatchEvent[]): void {
    if (this.done) return;
    for (const ev of events) {
      const change: Change = {
        revision: ev.kv.modRevision,
        name: ev.kv.key.slice(NODE_PREFIX.length),
        node: ev.type === "put" ? decodeNode(ev.kv) : undefined,
        prev: ev.prev ? decodeNode(ev.prev) : undefined,
      };
      if (change.revision <= this.w.skipThrough) continue;
      const out = eventFor(this.w, change);
      if (out) this.w.pushHistory(out);
      else this.w.advance(change.revision);
    }
    this.check();
  }

  private check(): void {
    if (this.done) return;
    if (this.w.offeredRevision >= this.cacheRevision()) {
      this.cancel();
      this.caughtUp();
    } else if (this.w.size > this.limit) {
      this.storeWatch?.cancel();
      this.storeWatch = undefined;
    }
  }
}

