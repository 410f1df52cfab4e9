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

/**
 * A registry whose renewals answer with a Lease named after the request's node (each request
 * names its own, so the order of the answers is checked against the requests'), at once unless
 * `slow`: then every renewal goes the slow path (renewLease, a promise). Counts both.
 */
function registry(slow: boolean): { renewAtOnce(name: string): Lease | undefined; renewLease(name: string): Promise<Lease>; atOnce: number; later: number } {
  const lease = (name: string): Lease => Lease.fromPartial({ metadata: { name }, spec: { leaseDurationSeconds: 40 } });
  const r = {
    atOnce: 0,
    later: 0,
    renewAtOnce: (name: string): Lease | undefined => {
      if (slow) return undefined;
      r.atOnce++;
      return lease(name);
    },
    renewLease: (name: string): Promise<Lease> => {
      r.later++;
      return Promise.resolve(lease(name));
    },
  };
  return r;
}

function start(slow: boolean): { call: SlowClientStream; reg: ReturnType<typeof registry>; send(from: number, to: number): void } {
  const metrics = new ServerMetrics({ storeRevision: () => Promise.resolve(0), processMetrics: false });
  const reg = registry(slow);
  const streams = new HeartbeatStreams({ registry: reg, metrics, calls: new Calls(metrics, pino({ level: "silent" })) });
  const call = new SlowClientStream();
  streams.handler(call as unknown as ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>);
  const send = (from: number, to: number): void => {
    for (let i = from; i < to; i++) call.emit("data", { nodeName: `renewal-${i}`, holderIdentity: "", leaseDurationSeconds: 0 });
  };
  return { call, reg, send };
}

/** Resolves once the client has taken `n` answers. */
async function taken(call: SlowClientStream, n: number): Promise<void> {
  while (call.taken.length < n) await once(call, "taken");
}

const names = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `renewal-${from + i}`);

describe("Heartbeat backpressure", () => {
  for (const slow of [false, true]) {
    it(`buffers up to ${MAX_BUFFERED_ANSWERS} answers for a client that reads nothing, then answers the rest in order once it reads (renewals answered ${slow ? "later" : "at once"})`, async () => {
      const { call, reg, send } = start(slow);
      const renewals = 1000;
      send(0, renewals);
      // Every renewal is done (the slow path's promises included); the answers that could be written are.
      await new Promise((resolve) => setImmediate(resolve));
      // Past the stream's high-water mark (where write() starts answering false), up to the bound.
      expect(MAX_BUFFERED_ANSWERS).toBeGreaterThan(call.writableHighWaterMark);
      expect(call.writableLength).toBeGreaterThanOrEqual(MAX_BUFFERED_ANSWERS);
      expect(call.writableLength).toBeLessThanOrEqual(MAX_BUFFERED_ANSWERS + 1);
      const all = taken(call, renewals);
      call.startReading();
      await all;
      expect(call.taken.map((a) => a.lease?.metadata?.name)).toEqual(names(0, renewals));
      expect(call.taken.every((a) => a.nextRenewInterval !== undefined)).toBe(true);
      expect(reg.atOnce + reg.later).toBe(renewals);
      if (slow) return;
      // Once the client has taken everything (the stream drained), renewals are answered at once again.
      if (call.writableNeedDrain) await once(call, "drain");
      await new Promise((resolve) => setImmediate(resolve));
      const before = reg.later;
      send(renewals, renewals + 10);
      await taken(call, renewals + 10);
      expect(reg.later).toBe(before);
      expect(call.taken.slice(renewals).map((a) => a.lease?.metadata?.name)).toEqual(names(renewals, renewals + 10));
    });
  }
});
