/**
 * nodectl's errors, each said in one line as kubectl says it: `error: …` for the user's
 * mistakes and for an unreachable server, `Error from server (Reason): …` for what the server
 * refused, with the gRPC code's meaning as kubectl's reason word.
 */
import { status } from "@grpc/grpc-js";
import { RpcError } from "../../client/errors.js";

/** A mistake nodectl reports itself: printed as `error: <message>`. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** The server could not be reached (no connection within the connect timeout, refused, no such host…). */
export class UnreachableError extends Error {
  constructor(
    readonly address: string,
    readonly why: string,
  ) {
    super(`cannot reach the nodeplane server at ${address}: ${why} (is it running? set --server or NODEPLANE_SERVER)`);
    this.name = "UnreachableError";
  }
}

/** Kubernetes' StatusReason words for gRPC codes (what kubectl prints in parentheses). */
const REASONS: Partial<Record<status, string>> = {
  [status.INVALID_ARGUMENT]: "Invalid",
  [status.NOT_FOUND]: "NotFound",
  [status.ALREADY_EXISTS]: "AlreadyExists",
  [status.ABORTED]: "Conflict",
  [status.OUT_OF_RANGE]: "Expired",
  [status.RESOURCE_EXHAUSTED]: "TooManyRequests",
  [status.UNAVAILABLE]: "ServiceUnavailable",
  [status.DEADLINE_EXCEEDED]: "Timeout",
  [status.PERMISSION_DENIED]: "Forbidden",
  [status.UNAUTHENTICATED]: "Unauthorized",
  [status.FAILED_PRECONDITION]: "BadRequest",
  [status.UNIMPLEMENTED]: "NotImplemented",
  [status.INTERNAL]: "InternalError",
  [status.UNKNOWN]: "Unknown",
  [status.DATA_LOSS]: "InternalError",
  [status.CANCELLED]: "Cancelled",
};

/**
 * RESOURCE_EXHAUSTED covers several limits; kubectl's word for each: a message over the size
 * limit (grpc-js: "Received/Sent message larger than max (A vs. B)"; a list answer too large to
 * send unpaged) is RequestEntityTooLarge, a full disk InsufficientStorage, the rest (watchers,
 * slow watchers, rates) TooManyRequests.
 */
function reasonOf(err: RpcError): string {
  if (err.code === status.RESOURCE_EXHAUSTED) {
    if (/message larger than max|largest message/.test(err.details)) return "RequestEntityTooLarge";
    if (/^disk full/.test(err.details)) return "InsufficientStorage";
  }
  return REASONS[err.code] ?? `code ${err.code}`;
}

/**
 * Why a call failed without reaching the server, from grpc-js's client-side details
 * ("No connection established. Last error: … ECONNREFUSED …", "Name resolution failed …"),
 * or undefined when the server itself answered.
 */
function connectionFailure(err: RpcError): string | undefined {
  if (err.code !== status.UNAVAILABLE) return undefined;
  const d = err.details;
  if (/ECONNREFUSED/.test(d)) return "connection refused";
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(d)) return "no such host";
  if (/EHOSTUNREACH/.test(d)) return "host unreachable";
  if (/ENETUNREACH/.test(d)) return "network unreachable";
  if (/ETIMEDOUT/.test(d)) return "connection timed out";
  if (/ECONNRESET|Connection dropped|Connection closed/.test(d)) return "the connection was reset";
  if (/No connection established/.test(d)) return d.replace(/^No connection established\. Last error: (Error: )?/, "").replace(/\.? ?Resolution note:.*$/, "");
  return undefined;
}

/** The one line nodectl prints for an error (without the trailing newline). */
export function errorLine(err: unknown, server: string): string {
  if (err instanceof UnreachableError || err instanceof CliError) return `error: ${err.message}`;
  if (err instanceof RpcError) {
    const why = connectionFailure(err);
    if (why !== undefined) return `error: ${new UnreachableError(server, why).message}`;
    if (err.code === status.DEADLINE_EXCEEDED && /^Deadline exceeded/i.test(err.details)) {
      // grpc-js's own deadline: "Deadline exceeded after 30.002s,LB pick: …"
      return `error: the nodeplane server at ${server} did not answer in time (--request-timeout)`;
    }
    const reason = reasonOf(err);
    return `Error from server (${reason}): ${oneLine(err.details)}`;
  }
  return `error: ${oneLine(err instanceof Error ? err.message : String(err))}`;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, "; ");
}
