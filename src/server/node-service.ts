/**
 * The NodeService handlers: decode, call the registry, encode. Short and alike; rules live
 * in the registry, errors go through the one error map, every call is counted and timed.
 */
import type { handleServerStreamingCall, handleUnaryCall, ServerUnaryCall, ServerWritableStream } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { NodeServiceServer, WatchRequest, WatchResponse } from "../gen/nodeplane/v1/service.js";
import { compileFilter } from "../registry/filter.js";
import type { EventRecorder } from "../registry/events.js";
import type { NodeRegistry } from "../registry/nodes.js";
import { parseRevision } from "../registry/paging.js";
import type { WatchCache } from "../watch/cache.js";
import type { Watcher } from "../watch/watcher.js";
import { ResourceExhaustedError } from "../errors.js";
import { batchWrites } from "./batched-writes.js";
import { drained } from "./drain.js";
import { watchResponseBytes } from "./watch-wire.js";
import { codeName, toServiceError } from "./errors.js";
import type { HeartbeatStreams } from "./heartbeat.js";
import type { ServerMetrics } from "./metrics.js";

export interface NodeServiceDeps {
  registry: NodeRegistry;
  events: EventRecorder;
  heartbeats: HeartbeatStreams;
  cache: WatchCache;
  metrics: ServerMetrics;
  log: Logger;
}

let nextRequestId = 0;
const requestId = (): string => `${process.pid.toString(36)}-${(++nextRequestId).toString(36)}`;

export function nodeService(deps: NodeServiceDeps): NodeServiceServer {
  const { registry } = deps;
  const unary = <Req, Res>(method: string, fn: (req: Req) => Promise<Res>): handleUnaryCall<Req, Res> =>
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
    renewLease: unary("RenewLease", async (req) => ({
      lease: await registry.renewLease(req.nodeName, req.holderIdentity, req.leaseDurationSeconds),
    })),
    getLease: unary("GetLease", async (req) => ({ lease: await registry.getLease(req.name) })),
    listLeases: unary("ListLeases", (req) => registry.listLeases(req)),
    listEvents: unary("ListEvents", async (req) => ({ events: await deps.events.list(req.nodeName) })),
    watch: watchHandler(deps),
    heartbeat: deps.heartbeats.handler,
  };
}

/** The unary wrapper (metrics, debug line, request id, error map); the auth service's handlers use it too. */
export function wrapUnary<Req, Res>(
  deps: Pick<NodeServiceDeps, "metrics" | "log">,
  method: string,
  fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = performance.now();
    const id = requestId();
    fn(call.request, call).then(
      (res) => {
        const seconds = (performance.now() - started) / 1000;
        deps.metrics.handled.inc({ method, code: "OK" });
        deps.metrics.latency.observe({ method }, seconds);
        deps.log.debug({ requestId: id, method, code: "OK", ms: seconds * 1000, peer: call.getPeer() }, "call");
        callback(null, res);
      },
      (err: unknown) => {
        const mapped = toServiceError(err, id);
        const code = codeName(mapped.code);
        const seconds = (performance.now() - started) / 1000;
        deps.metrics.handled.inc({ method, code });
        deps.metrics.latency.observe({ method }, seconds);
        const fields = { requestId: id, method, code, ms: seconds * 1000, peer: call.getPeer() };
        if (mapped.internal) deps.log.error({ ...fields, err }, "internal error");
        else if (mapped.code === status.UNAVAILABLE) deps.log.warn({ ...fields, err }, "call failed: unavailable");
        else deps.log.debug({ ...fields, details: mapped.error.details }, "call rejected");
        callback(mapped.error);
      },
    );
  };
}

function watchHandler(deps: NodeServiceDeps): handleServerStreamingCall<WatchRequest, WatchResponse> {
  // The handler writes pre-encoded WatchResponse bytes: the server adds this service with
  // nodeServiceDefinition (watch-wire.ts), whose Watch serializer passes them through.
  return (call: ServerWritableStream<WatchRequest, WatchResponse | Buffer>) => {
    const id = requestId();
    batchWrites(call);
    let watcher: Watcher | undefined;
    call.on("cancelled", () => watcher?.cancel());
    const run = async (): Promise<void> => {
      const req = call.request;
      watcher = await deps.cache.watch({
        afterRevision: parseRevision("resource_version", req.resourceVersion),
        filter: compileFilter(req.labelSelector, req.fieldSelector),
        sendInitialEvents: req.sendInitialEvents,
        allowBookmarks: req.allowBookmarks,
      });
      if (call.cancelled) watcher.cancel();
      deps.metrics.watchers.inc();
      try {
        for await (const ev of watcher) {
          // The same bytes for every watcher that gets this event (see watch-wire.ts).
          const more = call.write(watchResponseBytes(ev));
          deps.metrics.watchEvents.inc({ type: ev.type });
          if (!more) await drained(call, watcher.whenEnded());
        }
      } finally {
        deps.metrics.watchers.dec();
      }
    };
    run().then(
      () => {
        deps.metrics.handled.inc({ method: "Watch", code: call.cancelled ? "CANCELLED" : "OK" });
        call.end();
      },
      (err: unknown) => {
        const mapped = toServiceError(err, id);
        if (err instanceof ResourceExhaustedError) deps.metrics.slowWatchers.inc();
        deps.metrics.handled.inc({ method: "Watch", code: codeName(call.cancelled ? status.CANCELLED : mapped.code) });
        if (mapped.internal) deps.log.error({ err, method: "Watch", requestId: id }, "internal error");
        if (!call.cancelled) call.emit("error", mapped.error);
      },
    );
  };
}
