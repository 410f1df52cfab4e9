/**
 * The streaming heartbeat's backpressure, on a stand-in for grpc-js's server stream (an
 * object-mode Duplex with its high-water mark of 16) whose client takes nothing until told to:
 * pipelined renewals are answered without waiting for the client up to MAX_BUFFERED_ANSWERS
 * buffered answers, never more than one past it, and every answer goes out in request order once
 * the client reads.
 */
import { Duplex } from "node:stream";
import { once } from "node:events";
import { Metadata, type ServerDuplexStream } from "@grpc/grpc-js";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { HeartbeatRequest, HeartbeatResponse } from "../../src/gen/nodeplane/v1/service.js";
import { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { Calls } from "../../src/server/calls.js";
import { HeartbeatStreams, MAX_BUFFERED_ANSWERS } from "../../src/server/heartbeat.js";
import { ServerMetrics } from "../../src/server/metrics.js";

/** A server stream whose client reads nothing until `read()`; what it took, in order, in `taken`. */
class SlowClientStream extends Duplex {
  readonly metadata = new Metadata();
  cancelled = false;
  readonly taken: HeartbeatResponse[] = [];
  private reading = false;
  private waiting: (() => void) | undefined;

  constructor() {
    super({ objectMode: true, highWaterMark: 16 });
  }

  getPeer(): string {
    return "127.0.0.1:1";
  }

  /** The client starts reading: every answer buffered and to come is taken. */
  startReading(): this {
    this.reading = true;
    const next = this.waiting;
    this.waiting = undefined;
    next?.();
    return this;
  }

  override _read(): void {}

  override _write(answer: HeartbeatResponse, _encoding: BufferEncoding, done: () => void): void {
    this.taken.push(answer);
    this.emit("taken");
    if (this.reading) process.nextTick(done);
    else this.waiting = done;
  }
}

/** Renewals answered at once, each with its own Lease (its name says which renewal it answers). */
function registry(): { renewAtOnce(): Lease; renewLease(): Promise<Lease> } {
  let n = 0;
  const next = (): Lease => Lease.fromPartial({ metadata: { name: `answer-${n++}` }, spec: { leaseDurationSeconds: 40 } });
  return { renewAtOnce: next, renewLease: () => Promise.resolve(next()) };
}

describe("Heartbeat backpressure", () => {
  it(`buffers up to ${MAX_BUFFERED_ANSWERS} answers for a client that reads nothing, then answers the rest in order once it reads`, async () => {
    const metrics = new ServerMetrics({ storeRevision: () => Promise.resolve(0), processMetrics: false });
    const streams = new HeartbeatStreams({ registry: registry(), metrics, calls: new Calls(metrics, pino({ level: "silent" })) });
    const call = new SlowClientStream();
    streams.handler(call as unknown as ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>);
    const renewals = 1000;
    for (let i = 0; i < renewals; i++) call.emit("data", { nodeName: "hot", holderIdentity: "", leaseDurationSeconds: 0 });
    // Every renewal is done; the answers that could be written are (no client reading).
    await new Promise((resolve) => setImmediate(resolve));
    // Past the stream's high-water mark (where write() starts answering false), up to the bound.
    expect(MAX_BUFFERED_ANSWERS).toBeGreaterThan(call.writableHighWaterMark);
    expect(call.writableLength).toBeGreaterThanOrEqual(MAX_BUFFERED_ANSWERS);
    expect(call.writableLength).toBeLessThanOrEqual(MAX_BUFFERED_ANSWERS + 1);
    const allTaken = (async () => {
      while (call.taken.length < renewals) await once(call, "taken");
    })();
    call.startReading();
    await allTaken;
    expect(call.taken.map((a) => a.lease?.metadata?.name)).toEqual(Array.from({ length: renewals }, (_, i) => `answer-${i}`));
    expect(call.taken.every((a) => a.nextRenewInterval !== undefined)).toBe(true);
  });
});
