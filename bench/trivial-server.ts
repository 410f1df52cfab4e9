/**
 * The baseline: a bare grpc-js server serving the same NodeService definition (same proto,
 * same generated codecs, so request decoding and response encoding cost what they cost in
 * nodeplane), whose RenewLease answers one constant, pre-built response and does nothing
 * else. Every other method answers UNIMPLEMENTED (grpc-js' default handler).
 *
 * Usage: node dist/bench/trivial-server.js RESPONSE_BASE64
 *   RESPONSE_BASE64: an encoded RenewLeaseResponse (bench/run.ts passes a real lease taken
 *   from nodeplane, so both servers send the same number of bytes).
 * Listens on 127.0.0.1, any free port, and prints `trivial serving grpc=127.0.0.1:PORT`.
 * Exits on SIGTERM/SIGINT or when its stdin closes (the parent went away).
 */
import * as grpc from "@grpc/grpc-js";
import { NodeServiceService, type RenewLeaseRequest, RenewLeaseResponse } from "../src/gen/nodeplane/v1/service.js";

const encoded = process.argv[2];
if (!encoded) {
  process.stderr.write("usage: trivial-server RESPONSE_BASE64\n");
  process.exit(2);
}
const response = RenewLeaseResponse.decode(Buffer.from(encoded, "base64"));
if (!response.lease) {
  process.stderr.write("trivial-server: the response holds no lease\n");
  process.exit(2);
}

const maxMessage = 4 * 1024 * 1024; // nodeplane's default
const server = new grpc.Server({ "grpc.max_receive_message_length": maxMessage, "grpc.max_send_message_length": maxMessage });
const renewLease: grpc.handleUnaryCall<RenewLeaseRequest, RenewLeaseResponse> = (_call, callback) => callback(null, response);
server.addService(NodeServiceService, { renewLease });

server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`trivial-server: cannot listen: ${err.message}\n`);
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
