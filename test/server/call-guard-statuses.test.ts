/**
 * The guard that tolerantServer wraps around handlers when the server has no interceptors
 * (src/server/call-guard.ts): whatever shape of error a handler fails with, the client gets the
 * status grpc-js would send for it, with its details bounded — unary callbacks and errors a
 * streaming handler emits alike. A real grpc-js server on loopback with a service of raw bytes.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tolerantServer } from "../../src/server/call-guard.js";

const LONG = "x".repeat(10_000);
const raw = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };
const method = (path: string, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: raw.serialize,
  requestDeserialize: raw.deserialize,
  responseSerialize: raw.serialize,
  responseDeserialize: raw.deserialize,
});
const definition: grpc.ServiceDefinition = { Fail: method("/test.Guard/Fail", false), FailStream: method("/test.Guard/FailStream", true) };

/** The error a handler fails with, by the request's first byte. */
function failure(kind: number): object {
  switch (kind) {
    case 1: // not an Error; an integer code and no details: grpc-js sends the message
      return { code: grpc.status.INTERNAL, message: LONG };
    case 2: // an Error whose code is not a gRPC code: UNKNOWN with the message
      return Object.assign(new Error(LONG), { code: "ENOENT" });
    case 3: // details that are not text: grpc-js sends "Unknown Error"
      return { code: grpc.status.NOT_FOUND, details: 12345 };
    default:
      return { code: grpc.status.FAILED_PRECONDITION, details: LONG };
  }
}

let server: grpc.Server;
let client: grpc.Client;
beforeAll(async () => {
  server = new grpc.Server();
  tolerantServer(server, { interceptors: [], measure: false }).addService(definition, {
    Fail: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(failure(call.request[0] ?? 0)),
    FailStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => call.emit("error", failure(call.request[0] ?? 0)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});
afterAll(() => {
  client.close();
  server.forceShutdown();
});

function unary(kind: number): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest("/test.Guard/Fail", raw.serialize, raw.deserialize, Buffer.from([kind]), (err) => (err ? resolve(err) : reject(new Error("answered OK"))));
  });
}

function streaming(kind: number): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    const call = client.makeServerStreamRequest("/test.Guard/FailStream", raw.serialize, raw.deserialize, Buffer.from([kind]));
    call.on("data", () => {});
    call.on("error", resolve);
    call.on("end", () => reject(new Error("ended OK")));
  });
}

const bounded = (details: string): void => {
  expect(details.length).toBeLessThan(4200);
  expect(details).toMatch(/^x+… \(\d+ more bytes\)$/);
};

describe("a handler's error, without interceptors", () => {
  it("a unary callback's long details are bounded, its code kept", async () => {
    const err = await unary(0);
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    bounded(err.details);
  });

  it("a plain object with a code and a long message: the message, bounded", async () => {
    const err = await unary(1);
    expect(err.code).toBe(grpc.status.INTERNAL);
    bounded(err.details);
  });

  it("an Error with a code that is not gRPC's: UNKNOWN and its message, bounded", async () => {
    const err = await unary(2);
    expect(err.code).toBe(grpc.status.UNKNOWN);
    bounded(err.details);
  });

  it("details that are not text: the call still ends, as grpc-js ends it", async () => {
    const err = await unary(3);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toBe("Unknown Error");
  });

  it("an error a streaming handler emits has its details bounded too", async () => {
    const err = await streaming(0);
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    bounded(err.details);
    const plain = await streaming(2);
    expect(plain.code).toBe(grpc.status.UNKNOWN);
    bounded(plain.details);
  });
});
