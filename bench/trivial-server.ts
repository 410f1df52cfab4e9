/**
 * The baseline of every benchmark that compares nodeplane with "grpc-js alone": a bare grpc-js
 * server serving the same NodeService definition (same proto, same generated codecs, so request
 * decoding and response encoding cost what they cost in nodeplane) that stores nothing:
 *   - RenewLease answers one constant lease (bench/run.ts passes a real one taken from nodeplane,
 *     so both servers send the same number of bytes);
 *   - Register answers the node it got and that lease renamed to the node (bench/scale.ts);
 *   - Heartbeat answers each request at once with the lease renamed to the request's node and a
 *     10 s interval (bench/steady-heartbeat.ts).
 * Every other method answers UNIMPLEMENTED (grpc-js' default handler).
 *
 * Usage: node dist/bench/trivial-server.js [LEASE_BASE64]   (an encoded Lease; default: a made-up one)
 * Listens on 127.0.0.1, any free port, and prints `trivial serving grpc=127.0.0.1:PORT`.
 * Exits on SIGTERM/SIGINT or when its stdin closes (the parent went away).
 */
import * as grpc from "@grpc/grpc-js";
import { Lease } from "../src/gen/nodeplane/v1/lease.js";
import type { HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse, RenewLeaseRequest, RenewLeaseResponse } from "../src/gen/nodeplane/v1/service.js";
import { NodeServiceService } from "../src/gen/nodeplane/v1/service.js";

const now = new Date();
const lease = process.argv[2]
  ? Lease.decode(Buffer.from(process.argv[2], "base64"))
  : Lease.fromPartial({
      metadata: { namespace: "kube-node-lease", uid: "00000000-0000-4000-8000-000000000000", resourceVersion: "1", creationTimestamp: now },
      spec: { holderIdentity: "", leaseDurationSeconds: 40, acquireTime: now, renewTime: now, leaseTransitions: 0 },
    });
const renamed = (name: string): Lease => ({ ...lease, metadata: { ...lease.metadata!, name }, spec: { ...lease.spec!, holderIdentity: name } });

const renewLease: grpc.handleUnaryCall<RenewLeaseRequest, RenewLeaseResponse> = (_call, callback) => callback(null, { lease });
const register: grpc.handleUnaryCall<RegisterRequest, RegisterResponse> = (call, callback) =>
  callback(null, { node: call.request.node, lease: renamed(call.request.node?.metadata?.name ?? "") });
const heartbeat: grpc.handleBidiStreamingCall<HeartbeatRequest, HeartbeatResponse> = (call) => {
  call.on("data", (req: HeartbeatRequest) => call.write({ lease: renamed(req.nodeName), nextRenewInterval: { seconds: 10n, nanos: 0 } }));
  call.on("end", () => call.end());
};

const maxMessage = 4 * 1024 * 1024; // nodeplane's default
const server = new grpc.Server({ "grpc.max_receive_message_length": maxMessage, "grpc.max_send_message_length": maxMessage });
server.addService(NodeServiceService, { renewLease, register, heartbeat });
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`trivial-server: cannot listen: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`trivial serving grpc=127.0.0.1:${port}\n`);
});

const stop = (): void => {
  setTimeout(() => process.exit(0), 2000).unref();
  server.tryShutdown(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
