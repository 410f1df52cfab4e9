/**
 * Watch over HTTP, as kube-apiserver serves it: `?watch=true` answers 200 with a stream of
 * newline-delimited JSON `WatchEvent`s (`{"type":"MODIFIED","object":{…}}`), each written as
 * soon as it happens. Nodes come from the server's watch cache (the same watchers the gRPC
 * Watch has); Leases and Events from a watch on their store prefix (store-feed.ts).
 *
 * Start (Kubernetes' resourceVersion rules): unset or "0" — synthetic ADDED events for what
 * exists now, then changes; "N" — the changes after revision N (a compacted N ends the stream
 * with an ERROR event carrying a 410 Expired Status, as the apiserver does; the client lists
 * again). `sendInitialEvents=true` adds the initial state to any start, ended by a BOOKMARK
 * annotated `k8s.io/initial-events-end`. BOOKMARKs only with `allowWatchBookmarks=true`.
 * `timeoutSeconds` ends the stream cleanly.
 *
 * Errors before the first byte (a bad parameter, the watcher limit) are a plain Status answer;
 * once streaming, an error is an ERROR event and the end of the stream. A slow client is
 * cut off (its queue is bounded) rather than slowing anyone else; a client that goes away
 * ends its watcher.
 */
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import { UnavailableError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { KeyValue, Store } from "../store/store.js";
import type { NodeFilter } from "../model/filter.js";
import type { WatchCache } from "../watch/cache.js";
import type { WatchEncoder, WatchEventType } from "./format.js";
import { drained } from "../server/drain.js";
import { StoreFeed } from "./store-feed.js";
import { type StatusSubject, toStatus } from "./status.js";

export interface WatchItem<T> {
  type: WatchEventType;
  obj: T | undefined;
  revision: number;
  /** The BOOKMARK that ends a `sendInitialEvents` watch's initial state. */
  initialEventsEnd?: boolean;
}

/** A started watch: events until it ends; `cancel()` ends it from the consumer's side. */
export interface WatchSource<T> extends AsyncIterable<WatchItem<T>> {
  cancel(): void;
}

/** Where a watch starts: after a revision, or now with the current state first. */
export interface WatchStart {
  /** Undefined: now, with synthetic ADDED events for what exists (unless `initialEvents` is false). */
  afterRevision: number | undefined;
  /** The client's `sendInitialEvents` (undefined when it did not say). */
  sendInitialEvents: boolean | undefined;
  allowBookmarks: boolean;
}

/** Whether the initial state is sent, and whether its closing BOOKMARK is shown to the client. */
function initialState(start: WatchStart): { send: boolean; showEnd: boolean } {
  const send = start.sendInitialEvents ?? start.afterRevision === undefined;
  return { send, showEnd: start.sendInitialEvents === true && start.allowBookmarks };
}

/** A node watch from the watch cache. Throws (before any event) when it cannot start. */
export async function watchNodes(cache: WatchCache, filter: NodeFilter, start: WatchStart): Promise<WatchSource<Node>> {
  const initial = initialState(start);
  const watcher = await cache.watch({
    afterRevision: start.afterRevision,
    filter,
    sendInitialEvents: initial.send,
    allowBookmarks: start.allowBookmarks,
  });
  let initialEnd = initial.send;
  return {
    cancel: () => watcher.cancel(),
    async *[Symbol.asyncIterator]() {
      for await (const ev of watcher) {
        if (ev.type === "BOOKMARK") {
          const isEnd = initialEnd;
          initialEnd = false;
          if (isEnd ? !initial.showEnd : !start.allowBookmarks) continue;
          yield { type: "BOOKMARK", obj: undefined, revision: ev.revision, initialEventsEnd: isEnd };
          continue;
        }
        yield { type: ev.type, obj: ev.node, revision: ev.revision };
      }
    },
  };
}

export interface PrefixWatchOptions<T> {
  store: Store;
  prefix: string;
  decode: (kv: KeyValue) => T;
  matches: (obj: T) => boolean;
  /** The current state and its revision (for the initial events and a start "now"). */
  list: () => Promise<{ items: T[]; revision: number }>;
  queueLimit: number;
  bookmarkIntervalMs: number;
}

/** A watch on a store prefix (Leases, Events). */
export async function watchPrefix<T>(opts: PrefixWatchOptions<T>, start: WatchStart): Promise<WatchSource<T>> {
  const initial = initialState(start);
  let items: T[] = [];
  let after = start.afterRevision;
  if (initial.send || after === undefined) {
    const now = await opts.list();
    after ??= now.revision;
    if (initial.send) items = now.items.filter(opts.matches);
  }
  const feed = new StoreFeed<T>({ ...opts, afterRevision: after, allowBookmarks: start.allowBookmarks });
  const revisionOf = (obj: T): number => Number((obj as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion ?? 0);
  return {
    cancel: () => feed.cancel(),
    async *[Symbol.asyncIterator]() {
      for (const obj of items) yield { type: "ADDED", obj, revision: revisionOf(obj) };
      if (initial.send && initial.showEnd) yield { type: "BOOKMARK", obj: undefined, revision: after, initialEventsEnd: true };
      for await (const ev of feed) yield ev;
    },
  };
}

export interface StreamOptions {
  /** End the stream cleanly after this many seconds (0 = no limit). */
  timeoutSeconds: number;
  requestId: string;
  subject: StatusSubject;
  log: Logger;
  /** Aborted when the server shuts down: the stream ends with a 503 ERROR event. */
  stop: AbortSignal;
}

/** Write a started watch to the response until it ends, the client leaves, the timeout passes or the server stops. */
export async function streamWatch<T>(res: ServerResponse, source: WatchSource<T>, encoder: WatchEncoder<T>, opts: StreamOptions): Promise<void> {
  res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache, private", "transfer-encoding": "chunked" });
  res.flushHeaders();
  let closed = false;
  const onClose = (): void => {
    closed = true;
    source.cancel();
  };
  const onStop = (): void => source.cancel();
  res.on("close", onClose);
  opts.stop.addEventListener("abort", onStop);
  const timer = opts.timeoutSeconds > 0 ? setTimeout(() => source.cancel(), opts.timeoutSeconds * 1000) : undefined;
  let failure: unknown;
  try {
    if (opts.stop.aborted) source.cancel();
    for await (const item of source) {
      if (closed) break;
      // One write per event: Node sends it as its own chunk at once (no buffering to wait for).
      if (!res.write(encoder.event(item.type, item.obj, item.revision, item.initialEventsEnd))) await drained(res);
    }
  } catch (err) {
    failure = err;
  } finally {
    clearTimeout(timer);
    opts.stop.removeEventListener("abort", onStop);
    res.off("close", onClose);
    source.cancel();
  }
  if (closed) return;
  if (failure === undefined && opts.stop.aborted) {
    failure = new UnavailableError("the server is shutting down; watch again from the last resourceVersion received");
  }
  if (failure !== undefined) {
    const mapped = toStatus(failure, opts.requestId, opts.subject);
    if (mapped.internal) opts.log.error({ err: failure, requestId: opts.requestId }, "watch failed: internal error");
    res.write(`${JSON.stringify({ type: "ERROR", object: mapped.status })}\n`);
  }
  res.end();
}
