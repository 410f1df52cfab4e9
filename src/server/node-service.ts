/**
 * The NodeService handlers: decode, call the registry, encode. Short and alike; rules live
 * in the registry, errors go through the one error map, every call is counted and timed.
 */
import { type handleServerStreamingCall, type handleUnaryCall, Metadata, type ServerUnaryCall, type ServerWritableStream } from "@grpc/grpc-js";
import type { NodeServiceServer, WatchRequest, WatchResponse } from "../gen/nodeplane/v1/service.js";
import { compileFilter } from "../model/filter.js";
import type { EventRecorder } from "../registry/events.js";
import type { NodeRegistry } from "../registry/nodes.js";
import { parseRevision } from "../model/revision.js";
import type { WatchCache } from "../watch/cache.js";
import type { Watcher } from "../watch/watcher.js";
import { ResourceExhaustedError } from "../errors.js";
import { answerLimitFor, standIn } from "../registry/size.js";
import { batchWrites } from "./batched-writes.js";
import { drained } from "./drain.js";
import { watchResponseBytes } from "./watch-wire.js";
import type { Calls } from "./calls.js";
import type { HeartbeatStreams } from "./heartbeat.js";
import type { ServerMetrics } from "./metrics.js";

export interface NodeServiceDeps {
  registry: NodeRegistry;
  events: EventRecorder;
  heartbeats: HeartbeatStreams;
  cache: WatchCache;
  metrics: ServerMetrics;
  calls: Calls;
  /** The largest message (--max-message-size): a watch event over it is sent with a stand-in node. */
  maxMessageBytes: number;
}

export function nodeService(deps: NodeServiceDeps): NodeServiceServer {
  const { registry } = deps;
  const unary = <Req, Res>(method: string, fn: (req: Req) => Res | Promise<Res>): handleUnaryCall<Req, Res> =>
    wrapUnary(deps, method, fn);
  return {
    register: unary("Register", async (req) => registry.register(req.node ?? {})),
    createNode: unary("CreateNode", async (req) => ({ node: await registry.createNode(req.node ?? {}) })),
    getNode: unary("GetNode", async (req) => ({ node: await registry.getNode(req.name) })),
    listNodes: unary("ListNodes", (req) => registry.listNodes(req)),
    updateNode: unary("UpdateNode", async (req) => ({ node: await registry.updateNode(req.node ?? {}) })),
    updateStatus: unary("UpdateStatus", async (req) => ({
      node: await registry.updateStatus(req.name, req.status, req.resourceVersion),
    })),
    deleteNode: unary("DeleteNode", async (req) => ({ node: await registry.deleteNode(req.name, req.resourceVersion) })),
    // Answered in the same turn when the renewal is (see NodeRegistry.renewAtOnce).
    renewLease: unary("RenewLease", (req) => {
      const lease = registry.renewAtOnce(req.nodeName, req.holderIdentity, req.leaseDurationSeconds);
      return lease ? { lease } : registry.renewLease(req.nodeName, req.holderIdentity, req.leaseDurationSeconds).then((l) => ({ lease: l }));
    }),
    getLease: unary("GetLease", async (req) => ({ lease: await registry.getLease(req.name) })),
    listLeases: unary("ListLeases", (req) => registry.listLeases(req)),
    listEvents: unary("ListEvents", async (req) => ({ events: await deps.events.list(req.nodeName) })),
    watch: watchHandler(deps),
    heartbeat: deps.heartbeats.handler,
  };
}

/**
 * The unary wrapper (metrics, debug line, request id, error map); the auth service's handlers use
 * it too. A handler may answer synchronously (a value, or a throw), and is then answered in the
 * same turn.
 */
export function wrapUnary<Req, Res>(
  deps: Pick<NodeServiceDeps, "calls">,
  method: string,
  fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const rec = deps.calls.begin(method, call.getPeer());
    const ok = (res: Res): void => {
      rec.ok();
      callback(null, res);
    };
    const fail = (err: unknown): void => callback(rec.fail(err));
    let res: Res | Promise<Res>;
    try {
      res = fn(call.request, call);
    } catch (err) {
      return fail(err);
    }
    if (res instanceof Promise) res.then(ok, fail);
    else ok(res);
  };
}

/**
 * Write the events waiting in `watcher` to the stream: false once the stream has taken all it
 * will before 'drain' (more may wait), true when none waits. Throws the watcher's error.
 */
function writeWaiting(call: ServerWritableStream<WatchRequest, WatchResponse | Buffer>, watcher: Watcher, deps: NodeServiceDeps): boolean {
  for (let ev = watcher.take(); ev !== undefined; ev = watcher.take()) {
    // The same bytes for every watcher that gets this event (see watch-wire.ts). A node
    // stored before the object size limit may not fit in a message: the stream goes on
    // with a stand-in rather than dying on it (src/registry/size.ts).
    let bytes = watchResponseBytes(ev);
    if (bytes.length > deps.maxMessageBytes) {
      // A new event of the stand-in alone (not the stored bytes of the node it stands in for).
      bytes = watchResponseBytes({ type: ev.type, node: standIn(ev.node, bytes.length, answerLimitFor(deps.maxMessageBytes)), revision: ev.revision });
    }
    const more = call.write(bytes);
    deps.metrics.watchEvents.add(ev.type);
    if (!more) return false;
  }
  return true;
}

function watchHandler(deps: NodeServiceDeps): handleServerStreamingCall<WatchRequest, WatchResponse> {
  // The handler writes pre-encoded WatchResponse bytes: the server adds this service with
  // nodeServiceDefinition (watch-wire.ts), whose Watch serializer passes them through.
  return (call: ServerWritableStream<WatchRequest, WatchResponse | Buffer>) => {
    const rec = deps.calls.begin("Watch", call.getPeer(), { timed: false });
    batchWrites(call);
    let watcher: Watcher | undefined;
    let done = false;
    call.on("cancelled", () => watcher?.cancel());
    /** True the first time: the call ends here. */
    const ending = (): boolean => {
      if (done) return false;
      done = true;
      if (watcher !== undefined) deps.metrics.watchers.dec();
      return true;
    };
    const finish = (): void => {
      if (!ending()) return;
      rec.ok(call.cancelled ? "CANCELLED" : "OK");
      call.end();
    };
    const fail = (err: unknown): void => {
      if (!ending()) return;
      // A watcher that ended for a full queue (not a watch refused for --max-watchers: no watcher).
      if (err instanceof ResourceExhaustedError && watcher !== undefined) deps.metrics.slowWatchers.inc();
      if (call.cancelled) rec.ok("CANCELLED");
      else call.emit("error", rec.fail(err));
    };
    // Writes what waits, then asks to be called again: by the watcher when its next event comes
    // (or it ends), or once the stream drains. The same function every time, and nothing made
    // per wait: a watcher of one quiet node waits ~10 s between events, long enough for anything
    // made for the wait to be promoted (see Watcher.notify and Watcher.take).
    const pump = (): void => {
      const w = watcher;
      if (done || w === undefined) return;
      try {
        for (;;) {
          if (!writeWaiting(call, w, deps)) {
            // The stream is full: on once it drains, or as soon as the watcher ends (the client
            // left, or it read too slowly and the watcher failed).
            w.notifyEnd(pump);
            void drained(call).then(pump);
            return;
          }
          if (w.isEnded) return finish();
          if (w.notify(pump)) return;
        }
      } catch (err) {
        fail(err);
      }
    };
    const start = async (): Promise<void> => {
      const req = call.request;
      const w = await deps.cache.watch({
        afterRevision: parseRevision("resource_version", req.resourceVersion),
        filter: compileFilter(req.labelSelector, req.fieldSelector),
        sendInitialEvents: req.sendInitialEvents,
        allowBookmarks: req.allowBookmarks,
      });
      watcher = w;
      deps.metrics.watchers.inc();
      if (call.cancelled) w.cancel();
      // The response headers now, as kube-apiserver starts a watch's response at once: the
      // client knows the watch is established before its first event, which may come hours
      // later (a watch of one quiet node), and the headers are not sent with that event.
      else call.sendMetadata(new Metadata());
      pump();
    };
    start().catch(fail);
  };
}
