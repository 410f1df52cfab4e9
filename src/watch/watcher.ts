/**
 * One watcher: a bounded queue of events between the watch cache (producer) and a stream
 * (consumer, an async iterator). A live producer never blocks on a slow consumer: when the
 * queue is full the watcher is ended with RESOURCE_EXHAUSTED naming the last revision the
 * consumer took, so it can resume from there.
 */
import { ResourceExhaustedError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { NodeFilter } from "../registry/filter.js";

export type NodeEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

export interface NodeWatchEvent {
  type: NodeEventType;
  node: Node;
  revision: number;
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
  /** The revision up to which every event has been offered to this watcher. */
  offeredRevision = 0;
  /** The revision of the last event the consumer took. */
  takenRevision = 0;
  private queue: (NodeWatchEvent | undefined)[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private error: Error | undefined;
  private ended = false;
  private readonly opts: WatcherOptions;

  constructor(opts: WatcherOptions) {
    this.opts = opts;
    this.filter = opts.filter;
    this.allowBookmarks = opts.allowBookmarks;
  }

  get size(): number {
    return this.queue.length - this.head;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  get queueLimit(): number {
    return this.opts.queueLimit;
  }

  /** A live event: a full queue ends the watcher instead of blocking the producer. */
  push(ev: NodeWatchEvent): void {
    if (this.ended) return;
    if (this.size >= this.opts.queueLimit) {
      this.fail(
        new ResourceExhaustedError(
          `watch queue limit of ${this.opts.queueLimit} events exceeded: this watcher read too slowly; ` +
            `watch again from resource_version ${this.takenRevision} (the last event it received)`,
        ),
      );
      return;
    }
    this.enqueue(ev);
  }

  /** Initial and catch-up events: the producer pauses itself on `size`, so no limit here. */
  pushUnbounded(ev: NodeWatchEvent): void {
    if (!this.ended) this.enqueue(ev);
  }

  /** The revision moved on with nothing for this watcher. */
  advance(revision: number): void {
    if (revision > this.offeredRevision) this.offeredRevision = revision;
  }

  /** End with an error the consumer sees after nothing more (queued events are dropped). */
  fail(err: Error): void {
    if (this.ended) return;
    this.error = err;
    this.queue = [];
    this.head = 0;
    this.finish();
  }

  /** End cleanly (the consumer went away). */
  cancel(): void {
    if (this.ended) return;
    this.queue = [];
    this.head = 0;
    this.finish();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<NodeWatchEvent> {
    for (;;) {
      if (this.head < this.queue.length) {
        const ev = this.queue[this.head]!;
        this.queue[this.head++] = undefined;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        this.takenRevision = ev.revision;
        yield ev;
        continue;
      }
      if (this.error) throw this.error;
      if (this.ended) return;
      if (this.size === 0) this.opts.onDrained?.(this);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private enqueue(ev: NodeWatchEvent): void {
    this.queue.push(ev);
    if (ev.revision > this.offeredRevision) this.offeredRevision = ev.revision;
    this.signal();
  }

  private finish(): void {
    this.ended = true;
    this.signal();
    this.opts.onEnd(this);
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
