/**
 * The baseline of bench/scale.ts's register throughput: a bare grpc-js server serving the same
 * NodeService definition (same generated codecs: the request is decoded and the response
 * encoded as in nodeplane), whose Register answers the node it was sent and a constant Lease
 * renamed to the node, storing nothing. It is also the baseline of the steady heartbeat: its
 * Heartbeat answers each request at once with that Lease renamed to the request's node and a
 * 10 s interval. Every other method answers UNIMPLEMENTED.
 *
 * Usage: node dist/bench/trivial-register-server.js
 * Listens on 127.0.0.1, any free port, and prints `trivial serving grpc=127.0.0.1:PORT`.
 * Exits on SIGTERM/SIGINT or when its stdin closes (the parent went away).
 */
import * as grpc from "@grpc/grpc-js";
import { Lease } from "../src/gen/nodeplane/v1/lease.js";
import {
  type HeartbeatRequest,
  type HeartbeatResponse,
  NodeServiceService,
  type RegisterRequest,
  type RegisterResponse,
} from "../src/gen/nodeplane/v1/service.js";

const now = new Date();
const lease = Lease.fromPartial({
  metadata: { namespace: "kube-node-lease", uid: "00000000-0000-4000-8000-000000000000", resourceVersion: "1", creationTimestamp: now },
  spec: { holderIdentity: "", leaseDurationSeconds: 40, acquireTime: now, renewTime: now, leaseTransitions: 0 },
});

const maxMessage = 4 * 1024 * 1024; // nodeplane's default
const server = new grpc.Server({ "grpc.max_receive_message_length": maxMessage, "grpc.max_send_message_length": maxMessage });
const register: grpc.handleUnaryCall<RegisterRequest, RegisterResponse> = (call, callback) => {
  const name = call.request.node?.metadata?.name ?? "";
  callback(null, {
    node: call.request.node,
    lease: { ...lease, metadata: { ...lease.metadata!, name }, spec: { ...lease.spec!, holderIdentity: name } },
  });
};
const heartbeat: grpc.handleBidiStreamingCall<HeartbeatRequest, HeartbeatResponse> = (call) => {
  call.on("data", (req: HeartbeatRequest) => {
    const name = req.nodeName;
    call.write({
      lease: { ...lease, metadata: { ...lease.metadata!, name }, spec: { ...lease.spec!, holderIdentity: name } },
      nextRenewInterval: { seconds: 10n, nanos: 0 },
    });
  });
  call.on("end", () => call.end());
};
server.addService(NodeServiceService, { register, heartbeat });

server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`trivial-register-server: cannot listen: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`trivial serving grpc=127.0.0.1:${port}\n`);
});

const stop = (): void => {
  const timer = setTimeout(() => process.exit(0), 2000);
  timer.unref();
  server.tryShutdown(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
