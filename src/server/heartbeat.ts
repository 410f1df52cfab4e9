/**
 * The streaming heartbeat: one long-lived stream per agent, each request a Lease renewal
 * answered once it is committed (in order), with the interval the server wants before the
 * next one. 100,000 agents cost 100,000 idle streams and one small write per renewal, instead of
 * a call each. When the fleet would renew faster than --max-heartbeat-rate, the server asks for
 * a longer interval (at most half the lease duration, so leases never lapse).
 */
import type { handleBidiStreamingCall, Metadata, ServerDuplexStream } from "@grpc/grpc-js";
import { UnavailableError } from "../errors.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import type { HeartbeatRequest, HeartbeatResponse } from "../gen/nodeplane/v1/service.js";
import type { NodeRegistry } from "../registry/nodes.js";
import type { Calls } from "./calls.js";
import { drained } from "./drain.js";
import { toServiceError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";

type Stream = ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>;

export interface HeartbeatOptions {
  registry: NodeRegistry;
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
    let chain: Promise<void> = Promise.resolve();
    let ended = false;
    const finish = (): void => {
      if (ended) return;
      ended = true;
      this.open.delete(call);
      this.o.metrics.heartbeatStreams.dec();
    };
    call.on("data", (req: HeartbeatRequest) => {
      chain = chain.then(() => (ended || call.cancelled ? undefined : this.renew(call, req, finish)));
    });
    call.on("end", () => {
      void chain.then(() => {
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

  private async renew(call: Stream, req: HeartbeatRequest, finish: () => void): Promise<void> {
    const rec = this.o.calls.begin("Heartbeat", call.getPeer(), { count: (code) => this.o.metrics.heartbeats.inc({ code }) });
    let lease: Lease;
    try {
      await this.o.admit?.(call.metadata, req);
      lease = await this.o.registry.renewLease(req.nodeName, req.holderIdentity, req.leaseDurationSeconds);
    } catch (err) {
      const error = rec.fail(err);
      finish();
      if (!call.cancelled) call.emit("error", error);
      return;
    }
    rec.ok();
    if (!call.write({ lease, nextRenewInterval: this.interval(lease) })) await drained(call);
  }

  /** A quarter of the lease duration; longer when the fleet would exceed the rate cap. */
  private interval(lease: Lease): { seconds: bigint; nanos: number } {
    const duration = lease.spec?.leaseDurationSeconds || 40;
    const ms = Math.min(Math.max(duration * 250, (this.open.size / this.maxRate) * 1000), duration * 500);
    return { seconds: BigInt(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) };
  }
}
