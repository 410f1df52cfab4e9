/** batchWrites: a server stream hands buffered messages to HTTP/2 together, in order. */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { batchWrites } from "../../src/server/batched-writes.js";

const identity = (b: Buffer): Buffer => b;
const service = {
  stream: {
    path: "/test.Batch/Stream",
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;

const N = 2000;
let server: grpc.Server | undefined;
let client: grpc.Client | undefined;
afterEach(() => {
  client?.close();
  server?.forceShutdown();
  client = server = undefined;
});

interface Served {
  batched: boolean;
  /** The most messages handed to HTTP/2 at once (1 without batching). */
  largestBatch: number;
}

/** Serve one stream that writes N numbered messages at once; return them as the client got them. */
async function run(opts: grpc.ServerOptions): Promise<{ got: number[]; served: Served }> {
  const served: Served = { batched: false, largestBatch: 1 };
  server = new grpc.Server(opts);
  server.addService(service, {
    stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      served.batched = batchWrites(call);
      const writev: unknown = Reflect.get(call, "_writev");
      if (typeof writev === "function") {
        Reflect.set(call, "_writev", (chunks: unknown[], done: () => void) => {
          served.largestBatch = Math.max(served.largestBatch, chunks.length);
          Reflect.apply(writev, call, [chunks, done]);
        });
      }
      for (let i = 0; i < N; i++) {
        const b = Buffer.alloc(512);
        b.writeUInt32BE(i);
        call.write(b);
      }
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server!.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.makeServerStreamRequest(service.stream.path, identity, identity, Buffer.alloc(0));
  const got: number[] = [];
  await new Promise<void>((resolve, reject) => {
    call.on("data", (b: Buffer) => got.push(b.readUInt32BE(0)));
    call.on("end", resolve);
    call.on("error", reject);
  });
  return { got, served };
}

const inOrder = Array.from({ length: N }, (_, i) => i);

describe("batchWrites", () => {
  it("hands several buffered messages to HTTP/2 at once, all delivered in order", async () => {
    const { got, served } = await run({});
    expect(served.batched).toBe(true);
    expect(served.largestBatch).toBeGreaterThan(1);
    expect(got).toEqual(inOrder);
  });

  it("leaves a stream behind a server interceptor as it is (one message in flight keeps the order there)", async () => {
    const { got, served } = await run({ interceptors: [(_method, call) => new grpc.ServerInterceptingCall(call)] });
    expect(served.batched).toBe(false);
    expect(served.largestBatch).toBe(1);
    expect(got).toEqual(inOrder);
  });
});
