/**
 * The one wrapper every RPC goes through — each unary call, each Watch stream, each renewal on a
 * Heartbeat stream: a unique request id, the metrics (completions by method and code; latency),
 * the debug log line, and the one error map (src/server/errors.ts: anything that is not a domain
 * error becomes INTERNAL naming the request id, with its cause logged, never sent).
 */
import type { ServerErrorResponse } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { codeName, toServiceError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";

export interface CallOptions {
  /** Count the outcome here instead of the per-method completions (Heartbeat renewals). */
  count?: (code: string) => void;
  /** Observe the latency (default true; false for streams, whose length says nothing). */
  timed?: boolean;
}

/** One call in progress: end it exactly once, with ok() or fail(). */
export interface CallRecord {
  readonly id: string;
  ok(code?: "OK" | "CANCELLED"): void;
  /** Map, count and log the failure; answers the status to send. */
  fail(err: unknown): ServerErrorResponse;
}

let nextRequestId = 0;

/** One call in progress (a class, not closures: a busy Heartbeat stream begins thousands a second). */
class Call implements CallRecord {
  private seq = ++nextRequestId;
  private readonly started = performance.now();

  constructor(
    private readonly calls: Calls,
    private readonly method: string,
    private readonly peer: string,
    private readonly opts: CallOptions,
  ) {}

  get id(): string {
    return `${process.pid.toString(36)}-${this.seq.toString(36)}`;
  }

  ok(code: "OK" | "CANCELLED" = "OK"): void {
    const ms = this.finish(code);
    if (this.calls.debug) this.calls.log.debug({ requestId: this.id, method: this.method, code, ms, peer: this.peer }, "call");
  }

  fail(err: unknown): ServerErrorResponse {
    const mapped = toServiceError(err, this.id);
    const code = codeName(mapped.code);
    const fields = { requestId: this.id, method: this.method, code, ms: this.finish(code), peer: this.peer };
    const log = this.calls.log;
    if (mapped.internal) log.error({ ...fields, err }, "internal error");
    else if (mapped.code === status.UNAVAILABLE) log.warn({ ...fields, err }, "call failed: unavailable");
    else log.debug({ ...fields, details: mapped.error.details }, "call rejected");
    return mapped.error;
  }

  /** Count and time the outcome; answers the call's length in ms. */
  private finish(code: string): number {
    const ms = performance.now() - this.started;
    const m = this.calls.metrics;
    if (this.opts.count) this.opts.count(code);
    else m.handled.add(this.method, code);
    if (this.opts.timed ?? true) m.latency.record(this.method, ms / 1000);
    return ms;
  }
}

export class Calls {
  /** Whether debug lines are logged (checked once: building a line's fields costs). */
  readonly debug: boolean;

  constructor(
    readonly metrics: ServerMetrics,
    readonly log: Logger,
  ) {
    this.debug = log.isLevelEnabled("debug");
  }

  begin(method: string, peer: string, opts: CallOptions = {}): CallRecord {
    return new Call(this, method, peer, opts);
  }
}
