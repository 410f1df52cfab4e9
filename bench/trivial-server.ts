/**
 * The baseline of every benchmark that compares nodeplane with "grpc-js alone": a bare grpc-js
 * server serving the same NodeService definition (same proto, same generated codecs, so request
 * decoding and response encoding cost what they cost in nodeplane) that stores nothing:
 *   - RenewLease answers one constant lease (bench/run.ts passes a real one taken from nodeplane,
 *     so both servers send the same number of bytes);
 *   - Register answers the node it got and that lease renamed to the node (bench/scale.ts), and
 *     keeps the node in memory, as received, for UpdateStatus and Watch;
 *   - Heartbeat answers each request at once with the lease renamed to the request's node and a
 *     10 s interval (bench/steady-heartbeat.ts);
 *   - UpdateStatus and Watch are the fan-out (bench/watch-fanout.ts): UpdateStatus sets a kept
 *     node's status (NOT_FOUND for a node never registered), bumps a revision, encodes one
 *     MODIFIED WatchResponse and writes the same bytes to every watcher of that node and of
 *     every node, as nodeplane does (src/server/watch-wire.ts), then answers the node. Watch
 *     serves field_selector "" (every node) or `metadata.name=NAME`, from now, with nothing
 *     before the first change (what nodeplane sends a watcher asking for no resource_version,
 *     initial events or bookmarks: all the SDK needs); anything else is INVALID_ARGUMENT.
 *     Messages buffered on a stream go out together (src/server/batched-writes.ts, as in
 *     nodeplane: else grpc-js sends one per event-loop turn). Backpressure is left to grpc-js: a
 *     write past the stream's buffer limit is buffered anyway, so no watcher is ever cut off
 *     and a slow one costs memory instead (nodeplane ends it, past --watch-queue-size events).
 * Every other method answers UNIMPLEMENTED (grpc-js' default handler).
 *
 * It also serves /metrics on an HTTP port, under nodeplane's names so that a benchmark reads both
 * servers alike: nodeplane_watchers (open), nodeplane_watch_events_sent_total, and the event
 * loop's delay p99 and max since the previous scrape (nodejs_eventloop_lag_*_seconds, reset on
 * every scrape as prom-client's are).
 *
 * Usage: node dist/bench/trivial-server.js [LEASE_BASE64]   (an encoded Lease; default: a made-up one)
 * Listens on 127.0.0.1, any free ports, and prints `trivial serving grpc=127.0.0.1:PORT http=PORT`.
 * Exits on SIGTERM/SIGINT or when its stdin closes (the parent went away).
 */
import * as grpc from "@grpc/grpc-js";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { Lease } from "../src/gen/nodeplane/v1/lease.js";
import type { Node } from "../src/gen/nodeplane/v1/node.js";
import type {
  HeartbeatRequest,
  HeartbeatResponse,
  RegisterRequest,
  RegisterResponse,
  RenewLeaseRequest,
  RenewLeaseResponse,
  UpdateStatusRequest,
  UpdateStatusResponse,
  WatchRequest,
} from "../src/gen/nodeplane/v1/service.js";
import { NodeServiceService, WatchResponse } from "../src/gen/nodeplane/v1/service.js";
import { batchWrites } from "../src/server/batched-writes.js";
import { encodedWatch } from "../src/server/watch-wire.js";

const now = new Date();
const lease = process.argv[2]
  ? Lease.decode(Buffer.from(process.argv[2], "base64"))
  : Lease.fromPartial({
      metadata: { namespace: "kube-node-lease", uid: "00000000-0000-4000-8000-000000000000", resourceVersion: "1", creationTimestamp: now },
      spec: { holderIdentity: "", leaseDurationSeconds: 40, acquireTime: now, renewTime: now, leaseTransitions: 0 },
    });
const renamed = (name: string): Lease => ({ ...lease, metadata: { ...lease.metadata!, name }, spec: { ...lease.spec!, holderIdentity: name } });

/** Registered nodes by name, as received (with the latest status UpdateStatus set). */
const nodes = new Map<string, Node>();
let revision = 0;

type WatchStream = grpc.ServerWritableStream<WatchRequest, WatchResponse | Buffer>;
/** Open watchers: of one node (by name), of every node. */
const pinned = new Map<string, Set<WatchStream>>();
const everyNode = new Set<WatchStream>();
let watchers = 0;
let eventsSent = 0;

const renewLease: grpc.handleUnaryCall<RenewLeaseRequest, RenewLeaseResponse> = (_call, callback) => callback(null, { lease });
const register: grpc.handleUnaryCall<RegisterRequest, RegisterResponse> = (call, callback) => {
  const node = call.request.node;
  const name = node?.metadata?.name ?? "";
  if (node && name) nodes.set(name, node);
  callback(null, { node, lease: renamed(name) });
};
const heartbeat: grpc.handleBidiStreamingCall<HeartbeatRequest, HeartbeatResponse> = (call) => {
  call.on("data", (req: HeartbeatRequest) => call.write({ lease: renamed(req.nodeName), nextRenewInterval: { seconds: 10n, nanos: 0 } }));
  call.on("end", () => call.end());
};

const updateStatus: grpc.handleUnaryCall<UpdateStatusRequest, UpdateStatusResponse> = (call, callback) => {
  const { name, status } = call.request;
  const kept = nodes.get(name);
  if (!kept) return callback({ code: grpc.status.NOT_FOUND, details: `node ${JSON.stringify(name)} not found` });
  const rv = String(++revision);
  const node: Node = { ...kept, metadata: { ...kept.metadata!, resourceVersion: rv }, status };
  nodes.set(name, node);
  const of = pinned.get(name);
  if (of || everyNode.size > 0) {
    const u8 = WatchResponse.encode({ type: "MODIFIED", node, resourceVersion: rv }).finish();
    const bytes = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    for (const w of of ?? []) w.write(bytes);
    for (const w of everyNode) w.write(bytes);
    eventsSent += (of?.size ?? 0) + everyNode.size;
  }
  callback(null, { node });
};

const watch: grpc.handleServerStreamingCall<WatchRequest, WatchResponse> = (call: WatchStream) => {
  const { fieldSelector, labelSelector, resourceVersion, sendInitialEvents, allowBookmarks } = call.request;
  const name = /^metadata\.name=(.+)$/.exec(fieldSelector)?.[1];
  if ((fieldSelector !== "" && name === undefined) || labelSelector || resourceVersion || sendInitialEvents || allowBookmarks) {
    call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: 'the trivial server watches from now, field_selector "" or metadata.name=NAME only' });
    return;
  }
  let set = name === undefined ? everyNode : pinned.get(name);
  if (!set) pinned.set(name!, (set = new Set()));
  set.add(call);
  watchers++;
  batchWrites(call);
  call.once("cancelled", () => {
    set.delete(call);
    if (set.size === 0 && name !== undefined) pinned.delete(name);
    watchers--;
  });
};

/** NodeService with nodeplane's Watch serializer, which passes pre-encoded WatchResponse bytes through (the other methods' generated ones). */
const service: typeof NodeServiceService = { ...NodeServiceService, watch: encodedWatch };

const maxMessage = 4 * 1024 * 1024; // nodeplane's default
const server = new grpc.Server({ "grpc.max_receive_message_length": maxMessage, "grpc.max_send_message_length": maxMessage });
server.addService(service, { renewLease, register, heartbeat, updateStatus, watch });

const loopDelay = monitorEventLoopDelay({ resolution: 10 }); // prom-client's default resolution, as nodeplane's
loopDelay.enable();
// Full collections, as nodeplane's nodejs_gc_duration_seconds{kind="major"} counts them (every one: src/server/metrics.ts).
let fullGcs = 0;
let fullGcSeconds = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const detail: unknown = Reflect.get(e, "detail"); // a gc entry's { kind, flags } (not in this @types/node's PerformanceEntry)
    if (typeof detail !== "object" || detail === null || Reflect.get(detail, "kind") !== perfConstants.NODE_PERFORMANCE_GC_MAJOR) continue;
    fullGcs++;
    fullGcSeconds += e.duration / 1000;
  }
}).observe({ entryTypes: ["gc"] });
const metrics = createServer((req, res) => {
  if (req.url !== "/metrics") return void res.writeHead(404).end();
  const text =
    `nodeplane_watchers ${watchers}\nnodeplane_watch_events_sent_total ${eventsSent}\n` +
    `nodejs_eventloop_lag_p99_seconds ${loopDelay.percentile(99) / 1e9}\nnodejs_eventloop_lag_max_seconds ${loopDelay.max / 1e9}\n` +
    `nodejs_gc_duration_seconds_count{kind="major"} ${fullGcs}\nnodejs_gc_duration_seconds_sum{kind="major"} ${fullGcSeconds}\n`;
  loopDelay.reset();
  res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(text);
});

server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`trivial-server: cannot listen: ${err.message}\n`);
    process.exit(1);
  }
  metrics.listen(0, "127.0.0.1", () => process.stdout.write(`trivial serving grpc=127.0.0.1:${port} http=${(metrics.address() as AddressInfo).port}\n`));
});

const stop = (): void => {
  setTimeout(() => process.exit(0), 2000).unref();
  metrics.close();
  server.tryShutdown(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
