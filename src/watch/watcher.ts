/**
 * One watcher: a queue of events between the watch cache (producer) and a stream (consumer:
 * `take()` and `wait()`, as the server's Watch handler does, or an async iterator). A live
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
  private queue: (Queued | undefined)[] = [];
  private head = 0;
  private live = 0;
  private wake: (() => void) | undefined;
  private error: Error | undefined;
  private ended = false;
  private readonly endedPromise: Promise<void>;
  private resolveEnded!: () => void;
  private readonly opts: WatcherOptions;

  constructor(opts: WatcherOptions) {
    this.opts = opts;
    this.filter = opts.filter;
    this.allowBookmarks = opts.allowBookmarks;
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  /** Events waiting to be taken. */
  get size(): number {
    return this.queue.length - this.head;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Resolves when the watcher has ended (so a writer stuck on backpressure can stop waiting). */
  whenEnded(): Promise<void> {
    return this.endedPromise;
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
   * The next waiting event, or undefined when none waits (then `wait()`, unless the watcher has
   * ended); throws the watcher's error once it has failed. A consumer that takes events this way
   * and handles each in a plain function holds none while it waits: a suspended async frame
   * keeps whatever its registers last held, so a watcher of one quiet node that awaited inside
   * its loop kept its last event (and, through watch-wire.ts, its encoded bytes) until the next,
   * long enough to be promoted: with 10,000 such watchers, ~2.5 MB/s of ArrayBuffers reached
   * the old generation, the external memory that starts V8's full collections.
   */
  take(): NodeWatchEvent | undefined {
    if (this.head === this.queue.length) {
      if (this.error) throw this.error;
      return undefined;
    }
    const item = this.queue[this.head]!;
    this.queue[this.head++] = undefined;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (item.origin === "live") this.live--;
    // An initial ADDED carries its node's revision, not a position in the event stream;
    // the BOOKMARK that ends the initial state is the first resume point.
    if (item.origin !== "initial" || item.ev.type === "BOOKMARK") this.resumable = item.ev.revision;
    return item.ev;
  }

  /** Resolves once an event waits or the watcher has ended (telling `onDrained` first that the queue is empty). */
  wait(): Promise<void> {
    if (this.size > 0 || this.ended) return Promise.resolve();
    this.opts.onDrained?.(this);
    if (this.size > 0 || this.ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
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
    this.queue.push({ ev, origin });
    if (origin === "live") this.live++;
    if (ev.revision > this.offeredRevision) this.offeredRevision = ev.revision;
    if (ev.revision > this.lastQueuedRevision) this.lastQueuedRevision = ev.revision;
    this.signal();
  }

  private drop(): void {
    this.queue = [];
    this.head = 0;
    this.live = 0;
  }

  private finish(): void {
    this.ended = true;
    this.signal();
    this.resolveEnded();
    this.opts.onEnd(this);
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
