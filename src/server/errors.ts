/**
 * The one error map: domain errors become gRPC status codes here and nowhere else. Anything
 * that is not a domain error becomes INTERNAL with a request id; its cause is logged, never
 * sent (no internals in messages).
 */
import { Metadata, status } from "@grpc/grpc-js";
import type { ServerErrorResponse } from "@grpc/grpc-js";
import { type ErrorKind, InvalidError, NodeplaneError } from "../errors.js";

const CODES: Record<ErrorKind, status> = {
  Invalid: status.INVALID_ARGUMENT,
  NotFound: status.NOT_FOUND,
  AlreadyExists: status.ALREADY_EXISTS,
  Conflict: status.ABORTED,
  Compacted: status.OUT_OF_RANGE,
  ResourceExhausted: status.RESOURCE_EXHAUSTED,
  Unavailable: status.UNAVAILABLE,
  Unauthenticated: status.UNAUTHENTICATED,
  PermissionDenied: status.PERMISSION_DENIED,
};

export interface MappedError {
  error: ServerErrorResponse;
  code: status;
  /** Not a domain error: the caller logs the cause. */
  internal: boolean;
}

export function toServiceError(err: unknown, requestId: string): MappedError {
  if (err instanceof NodeplaneError) {
    const code = CODES[err.kind];
    const metadata = new Metadata();
    if (err instanceof InvalidError) {
      // Machine-readable field paths for clients that want them, beside the readable message.
      metadata.set("nodeplane-invalid-fields", err.violations.map((v) => v.field).join(","));
    }
    return { error: Object.assign(new Error(err.message), { code, details: err.message, metadata }), code, internal: false };
  }
  const details = `internal error (request id ${requestId})`;
  return { error: Object.assign(new Error(details), { code: status.INTERNAL, details }), code: status.INTERNAL, internal: true };
}

/** The name clients see for a code, for metrics labels. */
export const codeName = (code: status): string => status[code] ?? String(code);
