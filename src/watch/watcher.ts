/**
 * One watcher: a queue of events between the watch cache (producer) and a stream (consumer:
 * `take()` and `notify()`, as the server's Watch handler does, or an async iterator). A live
 * producer never blocks on a slow consumer: when more than `queueLimit` live events wait, the
 * watcher is ended with RESOURCE_EXHAUSTED naming the revision the consumer can resume from.
 * Initial and history events do not count against the limit: their producers pause themselves
 * instead (see CatchUp in cache.ts).
 *
 * The limit counts events waiting here. The server's Watch handler takes them as fast as its
 * gRPC stream accepts them (up to the stream's buffer of 16 messages, handed to HTTP/2 together:
 * src/server/batched-writes.ts), so a watcher is cut off only when its stream stays full while
 * `queueLimit` more events arrive: its client reads too slowly, or the server cannot send fast
 * enough.
 */
import { ResourceExhaustedError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { NodeFilter } from "../model/filter.js";

export type NodeEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

/** One event of a watch stream. Shared by every watcher that gets it: never changed once made. */
export interface NodeWatchEvent {
  readonly type: NodeEventType;
  readonly node: Node;
  readonly revision: number;
  /**
   * `node`'s bytes as stored (resource_version left out), when `node` is the stored version
   * itself (decoded from them): the server copies them instead of encoding it, then drops them
   * (watch-wire.ts).
   */
  stored?: Uint8Array | undefined;
}

/** How an event entered the queue. */
type Origin = "initial" | "history" | "live";

interface Queued {
  ev: NodeWatchEvent;
  origin: Origin;
}

export interface WatcherOptions {
  filter: NodeFilter;
  queueLimit: number;
  allowBookmarks: boolean;
  /** Called once when the watcher ends, however it ends. */
  onEnd: (w: Watcher) => void;
  /** Called when the consumer has emptied the queue and waits for more (resumes a paused catch-up). */
  onDrained?: (w: Watcher) => void;
}

export class Watcher implements AsyncIterable<NodeWatchEvent> {
  readonly filter: NodeFilter;
  readonly allowBookmarks: boolean;
  /** Every change up to this revision has been offered to this watcher. */
  offeredRevision = 0;
  /**
   * Changes at or below this revision were already offered by an earlier feed (history, or the
   * snapshot) and are skipped by the next one; set when a feed starts.
   */
  skipThrough = 0;
  /** The revision of the last event queued (bookmarks are sent only past it). */
  lastQueuedRevision = 0;
  /** The revision the consumer can resume from (undefined while it is still taking initial events). */
  private resumable: number | undefined;
  /**
   * The waiting events are `queue[head]` to `queue[tail - 1]`; the slots around them hold
   * undefined. The array is kept when it empties (a watcher of one quiet node would otherwise
   * make one per event, kept until its next event, long enough to be promoted).
   */
  private queue: (Queued | undefined)[] = [];
  private head = 0;
  private tail = 0;
  private live = 0;
  /** The consumer's callback (see notify), and whether an event calls it or only the end. */
  private wake: (() => void) | undefined;
  private wakeOnEvent = false;
  private error: Error | undefined;
  private ended = false;
  private readonly opts: WatcherOptions;

  constructor(opts: WatcherOptions) {
    this.opts = opts;
    this.filter = opts.filter;
    this.allowBookmarks = opts.allowBookmarks;
  }

  /** Events waiting to be taken. */
  get size(): number {
    return this.tail - this.head;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** A live event: too many waiting ends the watcher instead of blocking the producer. */
  push(ev: NodeWatchEvent): void {
    if (this.ended) return;
    if (this.live >= this.opts.queueLimit) {
      const resume =
        this.resumable === undefined
          ? "watch again with send_initial_events, or list again and watch from the list's resource_version"
          : `watch again from resource_version ${this.resumable} (the last revision it received)`;
      this.fail(
        new ResourceExhaustedError(
          `watch queue limit of ${this.opts.queueLimit} events exceeded (--watch-queue-size): this watcher read too slowly; ${resume}`,
        ),
      );
      return;
    }
    this.enqueue(ev, "live");
  }

  /** An initial-state event (ADDED of the snapshot, then its BOOKMARK marks the end). */
  pushInitial(ev: NodeWatchEvent): void {
    if (!this.ended) this.enqueue(ev, "initial");
  }

  /** A history (catch-up) event. */
  pushHistory(ev: NodeWatchEvent): void {
    if (!this.ended) this.enqueue(ev, "history");
  }

  /** The revision moved on with nothing for this watcher. */
  advance(revision: number): void {
    if (revision > this.offeredRevision) this.offeredRevision = revision;
  }

  /** Take `revision` as a resume point already known to the consumer (the start revision). */
  startFrom(revision: number): void {
    this.resumable = revision;
    this.advance(revision);
    this.skipThrough = revision;
  }

  /** End with an error the consumer sees after nothing more (queued events are dropped). */
  fail(err: Error): void {
    if (this.ended) return;
    this.error = err;
    this.drop();
    this.finish();
  }

  /** End cleanly (the consumer went away). */
  cancel(): void {
    if (this.ended) return;
    this.drop();
    this.finish();
  }

  /**
   * The next waiting event, or undefined when none waits (then `notify()`, unless the watcher has
   * ended); throws the watcher's error once it has failed. A consumer that takes events this way
   * and handles each in a plain function holds none while it waits: a suspended async frame
   * keeps whatever its registers last held, so a watcher of one quiet node that awaited inside
   * its loop kept its last event (and, through watch-wire.ts, its encoded bytes) until the next,
   * long enough to be promoted: with 10,000 such watchers, ~2.5 MB/s of ArrayBuffers reached
   * the old generation, the external memory that starts V8's full collections.
   */
  take(): NodeWatchEvent | undefined {
    if (this.head === this.tail) {
      if (this.error) throw this.error;
      return undefined;
    }
    const item = this.queue[this.head]!;
    this.queue[this.head++] = undefined;
    if (this.head === this.tail) {
      // Empty: start again at the front; an array grown by a burst is let go.
      this.head = this.tail = 0;
      if (this.queue.length > 1024) this.queue = [];
    } else if (this.head > 1024 && this.head * 2 > this.tail) {
      this.queue = this.queue.slice(this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    if (item.origin === "live") this.live--;
    // An initial ADDED carries its node's revision, not a position in the event stream;
    // the BOOKMARK that ends the initial state is the first resume point.
    if (item.origin !== "initial" || item.ev.type === "BOOKMARK") this.resumable = item.ev.revision;
    return item.ev;
  }

  /**
   * Unless an event waits or the watcher has ended (then false: take on), call `ready` once, from
   * a microtask, when the next event arrives or the watcher ends, and return true; tells
   * `onDrained` first that the queue is empty. The server's Watch handler passes the same
   * function every time: a watcher waiting for its next event holds nothing made for that wait.
   * One consumer: a later `notify` or `notifyEnd` replaces the callback.
   */
  notify(ready: () => void): boolean {
    if (this.size > 0 || this.ended) return false;
    this.opts.onDrained?.(this);
    if (this.size > 0 || this.ended) return false;
    this.wake = ready;
    this.wakeOnEvent = true;
    return true;
  }

  /**
   * Call `ready` once, from a microtask, when the watcher ends, but not for events: for a
   * consumer waiting for its stream to drain, which stops waiting if the watcher fails meanwhile.
   */
  notifyEnd(ready: () => void): void {
    this.wake = ready;
    this.wakeOnEvent = false;
    if (this.ended) this.signal(true);
  }

  /** Resolves once an event waits or the watcher has ended (see notify). */
  wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (!this.notify(resolve)) resolve();
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<NodeWatchEvent> {
    for (;;) {
      const ev = this.take();
      if (ev !== undefined) {
        yield ev;
        continue;
      }
      if (this.ended) return;
      await this.wait();
    }
  }

  private enqueue(ev: NodeWatchEvent, origin: Origin): void {
    this.queue[this.tail++] = { ev, origin };
    if (origin === "live") this.live++;
    if (ev.revision > this.offeredRevision) this.offeredRevision = ev.revision;
    if (ev.revision > this.lastQueuedRevision) this.lastQueuedRevision = ev.revision;
    this.signal(false);
  }

  private drop(): void {
    this.queue = [];
    this.head = this.tail = 0;
    this.live = 0;
  }

  private finish(): void {
    this.ended = true;
    this.signal(true);
    this.opts.onEnd(this);
  }

  /** Call the consumer back (from a microtask: the producer goes on with its other watchers first). */
  private signal(end: boolean): void {
    const wake = this.wake;
    if (wake === undefined || !(end || this.wakeOnEvent)) return;
    this.wake = undefined;
    void settled.then(wake);
  }
}

const settled = Promise.resolve();
