/**
 * The one error map: domain errors become gRPC status codes here and nowhere else. Anything
 * that is not a domain error becomes INTERNAL with a request id; its cause is logged, never
 * sent (no internals in messages).
 *
 * Nothing a client sent goes into an ASCII metadata value: grpc-js throws on a non-ASCII one
 * while sending the status, and that throw used to stop the server (issue 11, a label key "ü").
 * The message travels in grpc-message, which grpc-js percent-encodes; an INVALID_ARGUMENT's field
 * violations travel in the standard grpc-status-details-bin trailer (src/status-details.ts).
 */
import { Metadata, status } from "@grpc/grpc-js";
import type { ServerErrorResponse } from "@grpc/grpc-js";
import { type ErrorKind, InvalidError, NodeplaneError, quote } from "../errors.js";
import { encodeStatusDetails, STATUS_DETAILS_KEY } from "../status-details.js";

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
  FailedPrecondition: status.FAILED_PRECONDITION,
};

export interface MappedError {
  error: ServerErrorResponse;
  code: status;
  /** Not a domain error: the caller logs the cause. */
  internal: boolean;
}

/** Never throws: a domain error that cannot be mapped (it should not happen) is answered INTERNAL. */
export function toServiceError(err: unknown, requestId: string): MappedError {
  if (err instanceof NodeplaneError) {
    try {
      return mapDomainError(err);
    } catch {
      // Fall through to INTERNAL: the caller logs `err`.
    }
  }
  const details = `internal error (request id ${requestId})`;
  return { error: Object.assign(new Error(details), { code: status.INTERNAL, details }), code: status.INTERNAL, internal: true };
}

function mapDomainError(err: NodeplaneError): MappedError {
  const code = CODES[err.kind];
  // grpc-js percent-encodes the message with encodeURI, which throws on a lone surrogate.
  const details = wellFormed(err.message);
  const metadata = new Metadata();
  if (err instanceof InvalidError) {
    const fieldViolations = err.shown.map((v) => ({
      field: wellFormed(v.field),
      description: wellFormed(`${quote(v.value)}: ${v.rule}`),
    }));
    metadata.set(STATUS_DETAILS_KEY, encodeStatusDetails({ code, message: details, fieldViolations }));
  }
  return { error: Object.assign(new Error(details), { code, details, metadata }), code, internal: false };
}

/** `s` with lone surrogates replaced by U+FFFD. */
function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

/** The name clients see for a code, for metrics labels. */
export const codeName = (code: status): string => status[code] ?? String(code);
