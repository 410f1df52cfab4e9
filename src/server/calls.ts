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

export class Calls {
  constructor(
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
  ) {}

  begin(method: string, peer: string, opts: CallOptions = {}): CallRecord {
    const started = performance.now();
    const id = `${process.pid.toString(36)}-${(++nextRequestId).toString(36)}`;
    const finish = (code: string): number => {
      const seconds = (performance.now() - started) / 1000;
      if (opts.count) opts.count(code);
      else this.metrics.handled.inc({ method, code });
      if (opts.timed ?? true) this.metrics.latency.observe({ method }, seconds);
      return seconds * 1000;
    };
    return {
      id,
      ok: (code = "OK") => {
        const ms = finish(code);
        this.log.debug({ requestId: id, method, code, ms, peer }, "call");
      },
      fail: (err) => {
        const mapped = toServiceError(err, id);
        const code = codeName(mapped.code);
        const fields = { requestId: id, method, code, ms: finish(code), peer };
        if (mapped.internal) this.log.error({ ...fields, err }, "internal error");
        else if (mapped.code === status.UNAVAILABLE) this.log.warn({ ...fields, err }, "call failed: unavailable");
        else this.log.debug({ ...fields, details: mapped.error.details }, "call rejected");
        return mapped.error;
      },
    };
  }
}
