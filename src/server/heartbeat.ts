/**
 * The streaming heartbeat: one long-lived stream per agent, each request a Lease renewal
 * (NodeRegistry.renewLease: answered at once, made durable by the next checkpoint) answered in
 * order, with the interval the server wants before the next one. 100,000 agents cost 100,000
 * idle streams and a renewal in memory each, instead of a call each. When the fleet would renew faster than --max-heartbeat-rate, the server asks for
 * a longer interval (at most half the lease duration, so leases never lapse).
 */
import type { handleBidiStreamingCall, Metadata, ServerDuplexStream } from "@grpc/grpc-js";
import { UnavailableError } from "../errors.js";
import type { Duration } from "../gen/google/protobuf/duration.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import type { HeartbeatRequest, HeartbeatResponse } from "../gen/nodeplane/v1/service.js";
import type { NodeRegistry } from "../registry/nodes.js";
import type { CallRecord, Calls } from "./calls.js";
import { batchWrites } from "./batched-writes.js";
import { drained } from "./drain.js";
import { toServiceError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";

type Stream = ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>;

/** Renewals of one stream not yet answered before the server stops reading it (backpressure). */
const MAX_IN_FLIGHT = 1024;

/**
 * Answers of one stream buffered for the client before the server waits for it to take them
 * ('drain'). grpc-js's stream is an object-mode Writable whose write() returns false past 16
 * messages; honoured at 16, pipelined renewals on a busy stream were answered 16 per drain (the
 * bytes written out, one event-loop turn later) and the rest took the slow path (a promise chain
 * each). 256 answers of ~250 bytes are about one HTTP/2 stream window (64 KiB). Bounded with
 * MAX_IN_FLIGHT: a client that reads nothing holds at most one answer more than this and
 * MAX_IN_FLIGHT renewals on its stream.
 */
export const MAX_BUFFERED_ANSWERS = 256;

export interface HeartbeatOptions {
  registry: Pick<NodeRegistry, "renewAtOnce" | "renewLease">;
  metrics: ServerMetrics;
  /** Every renewal goes through the calls wrapper: request id, metrics, log line, error map. */
  calls: Calls;
  /** Renewals per second the whole fleet should stay under (default 10,000). */
  maxRate?: number;
  /** Admits each renewal (authorization, per-identity rate; src/auth/gate.ts): a refusal ends the stream with its error. */
  admit?: (metadata: Metadata, req: HeartbeatRequest) => Promise<void>;
}

export class HeartbeatStreams {
  private readonly open = new Set<Stream>();
  private readonly maxRate: number;
  private closing = false;
  /** Renewals are counted by result code in nodeplane_heartbeats_total. */
  private readonly counted = { count: (code: string) => this.o.metrics.heartbeats.add(code) };
  /** Intervals answered (few distinct ones), so that an answer allocates none. */
  private readonly durations = new Map<number, Duration>();

  constructor(private readonly o: HeartbeatOptions) {
    this.maxRate = o.maxRate ?? 10_000;
  }

  /** The gRPC handler. */
  readonly handler: handleBidiStreamingCall<HeartbeatRequest, HeartbeatResponse> = (call) => {
    if (this.closing) {
      call.emit("error", toServiceError(new UnavailableError("server is shutting down"), "-").error);
      return;
    }
    this.open.add(call);
    this.o.metrics.heartbeatStreams.inc();
    // Answers written in one event-loop turn (a burst of pipelined renewals) go out together.
    batchWrites(call);
    // Answers go out in request order, each once its renewal is done; renewals start as they
    // arrive, so renewals waiting for one checkpoint ride along in it (lease-renewals.ts).
    let answered: Promise<void> = Promise.resolve();
    let inFlight = 0;
    let paused = false;
    /** The last answer written at once filled the stream's buffer: answers wait for 'drain' until it empties. */
    let blocked = false;
    let ended = false;
    const peer = call.getPeer();
    const finish = (): void => {
      if (ended) return;
      ended = true;
      this.open.delete(call);
      this.o.metrics.heartbeatStreams.dec();
    };
    call.on("data", (req: HeartbeatRequest) => {
      if (ended || call.cancelled) return;
      // The hot path: nothing waiting to be answered, no admission to wait for (authentication
      // off), and the renewal answered at once.
      if (inFlight === 0 && !blocked && !this.o.admit) {
        const lease = this.o.registry.renewAtOnce(req.nodeName, req.holderIdentity, req.leaseDurationSeconds);
        if (lease) {
          this.o.calls.begin("Heartbeat", peer, this.counted).ok();
          if (this.writeAnswer(call, lease)) {
            blocked = true;
            void drained(call).then(() => (blocked = false));
          }
          return;
        }
      }
      const rec = this.o.calls.begin("Heartbeat", peer, this.counted);
      // Admitted first (authorization, the identity's rate), then started: a refused renewal never runs.
      const admit = this.o.admit;
      const renewal = admit
        ? admit(call.metadata, req).then(() => this.o.registry.renewLease(req.nodeName, req.holderIdentity, req.leaseDurationSeconds))
        : this.o.registry.renewLease(req.nodeName, req.holderIdentity, req.leaseDurationSeconds);
      renewal.catch(() => {}); // answered (or failed) in turn below
      if (++inFlight >= MAX_IN_FLIGHT && !paused) {
        paused = true;
        call.pause();
      }
      answered = answered.then(async () => {
        if (!ended && !call.cancelled) await this.answer(call, rec, renewal, finish);
        inFlight--;
        if (paused && inFlight <= MAX_IN_FLIGHT / 2) {
          paused = false;
          call.resume();
        }
      });
    });
    call.on("end", () => {
      void answered.then(() => {
        if (ended) return;
        finish();
        call.end();
      });
    });
    call.on("cancelled", finish);
  };

  /** End every stream with UNAVAILABLE (agents reconnect to another replica or after restart). */
  closeAll(): void {
    this.closing = true;
    const err = toServiceError(new UnavailableError("server is shutting down; reconnect"), "-").error;
    for (const call of [...this.open]) {
      this.open.delete(call);
      this.o.metrics.heartbeatStreams.dec();
      call.emit("error", err);
    }
  }

  /** Send one renewal's answer, or end the stream with its error. */
  private async answer(call: Stream, rec: CallRecord, renewal: Promise<Lease>, finish: () => void): Promise<void> {
    let lease: Lease;
    try {
      lease = await renewal;
    } catch (err) {
      const error = rec.fail(err);
      finish();
      if (!call.cancelled) call.emit("error", error);
      return;
    }
    rec.ok();
    if (this.writeAnswer(call, lease)) await drained(call);
  }

  /** Write a renewal's answer; true when MAX_BUFFERED_ANSWERS now wait for the client (the caller waits for 'drain'). */
  private writeAnswer(call: Stream, lease: Lease): boolean {
    return !call.write({ lease, nextRenewInterval: this.interval(lease) }) && call.writableLength >= MAX_BUFFERED_ANSWERS;
  }

  /** A quarter of the lease duration; longer when the fleet would exceed the rate cap. */
  private interval(lease: Lease): Duration {
    const duration = lease.spec?.leaseDurationSeconds || 40;
    const ms = Math.min(Math.max(duration * 250, (this.open.size / this.maxRate) * 1000), duration * 500);
    let d = this.durations.get(ms);
    if (!d) {
      d = { seconds: BigInt(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) };
      if (this.durations.size < 1024) this.durations.set(ms, d);
    }
    return d;
  }
}
