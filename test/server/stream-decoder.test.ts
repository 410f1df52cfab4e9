import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { releaseDecodedChunks } from "../../src/server/stream-decoder.js";

interface Decoder {
  readState: number;
  readCompressFlag: Buffer;
  readPartialMessage: Buffer[];
  write(data: Buffer): Buffer[];
}
const { StreamDecoder } = createRequire(import.meta.url)("@grpc/grpc-js/build/src/stream-decoder.js") as {
  StreamDecoder: new (max: number) => Decoder;
};

/** A gRPC message frame: flag, 4-byte length, payload. */
function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

const payloads = [Buffer.from("first renewal"), Buffer.alloc(0), Buffer.from("x".repeat(300)), Buffer.from([0, 1, 2, 255])];
const wire = Buffer.concat(payloads.map(frame));

describe("releaseDecodedChunks (grpc-js StreamDecoder)", () => {
  it("knows the installed grpc-js decoder and patches it once", () => {
    expect(releaseDecodedChunks()).toBe(true);
    const write = StreamDecoder.prototype.write;
    expect(releaseDecodedChunks()).toBe(true);
    expect(StreamDecoder.prototype.write).toBe(write);
  });

  it("decodes the same messages however the bytes are split", () => {
    releaseDecodedChunks();
    const want = payloads.map(frame);
    for (let a = 0; a <= wire.length; a++) {
      for (const b of [a, Math.min(wire.length, a + 1), Math.min(wire.length, a + 7), wire.length]) {
        const d = new StreamDecoder(-1);
        const got = [wire.subarray(0, a), wire.subarray(a, b), wire.subarray(b)].flatMap((chunk) => (chunk.length > 0 ? d.write(Buffer.from(chunk)) : []));
        expect(got).toEqual(want);
      }
    }
  });

  it("keeps no view of a chunk once its message is complete", () => {
    releaseDecodedChunks();
    const d = new StreamDecoder(-1);
    const chunk = Buffer.from(frame(Buffer.from("a renewal")));
    expect(d.write(chunk)).toHaveLength(1);
    expect(d.readPartialMessage).toHaveLength(0);
    expect(d.readCompressFlag.buffer).not.toBe(chunk.buffer);
    // Mid-message it still holds what it needs, and finishes the message after.
    const [head, tail] = [chunk.subarray(0, 8), chunk.subarray(8)];
    expect(d.write(Buffer.from(head))).toEqual([]);
    expect(d.readPartialMessage.length).toBeGreaterThan(0);
    expect(d.write(Buffer.from(tail))).toEqual([chunk]);
    expect(d.readPartialMessage).toHaveLength(0);
  });

  it("still refuses a message over the limit", () => {
    releaseDecodedChunks();
    const d = new StreamDecoder(4);
    expect(() => d.write(frame(Buffer.from("too long")))).toThrow(/larger than max/);
  });
});
