/**
 * Domain errors. Every layer below the transport throws only these; the server turns them
 * into gRPC status codes through one table (src/server/errors.ts), the SDK turns status codes
 * back into them. Messages are written for the person who made the request.
 */

/** Cut a user-supplied value short so that error messages stay readable. */
export function quote(value: string, max = 64): string {
  const shown = value.length > max ? `${value.slice(0, max)}…(${value.length} chars)` : value;
  return JSON.stringify(shown);
}

export abstract class NodeplaneError extends Error {
  abstract readonly kind: ErrorKind;
  /** `options.cause` is for logs only: clients get `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export type ErrorKind =
  | "Invalid"
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Compacted"
  | "ResourceExhausted"
  | "Unavailable"
  | "Unauthenticated"
  | "PermissionDenied"
  | "FailedPrecondition";

/** One broken rule: which field, the offending value, the rule. */
export interface FieldViolation {
  field: string;
  value: string;
  rule: string;
}

/** How one violation reads in a message: field, value (cut short), rule. */
function describeViolation(v: FieldViolation): string {
  return cutBytes(`${v.field}: ${quote(v.value)}: ${v.rule}`, MAX_VIOLATION_BYTES);
}

/**
 * Error text is bounded: a request with 10,000 bad labels gets the first few violations and a
 * count of the rest, not a megabyte of trailers (a default grpcio client refuses trailers over
 * 8 KiB; the message also travels again inside grpc-status-details-bin, see
 * src/server/status-details.ts). At most this many violations are named…
 */
const MAX_VIOLATIONS_SHOWN = 20;
/** …and the message is at most this many UTF-8 bytes (percent-encoding may triple it on the wire). */
const MAX_MESSAGE_BYTES = 2048;
/** One violation's description is cut at this many bytes (a field path can hold a 317-character key). */
const MAX_VIOLATION_BYTES = 640;

/** `s` cut to at most `max` UTF-8 bytes (never inside a character), marked "…" when cut. */
function cutBytes(s: string, max: number): string {
  if (Buffer.byteLength(s, "utf8") <= max) return s;
  let out = "";
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, "utf8");
    if (bytes + n > max - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}…`;
}

/** A request broke one or more rules (INVALID_ARGUMENT). */
export class InvalidError extends NodeplaneError {
  readonly kind = "Invalid";
  /** The violations the message names (the first ones, within its bounds); `violations` has them all. */
  readonly shown: readonly FieldViolation[];
  constructor(readonly violations: FieldViolation[]) {
    const parts: string[] = [];
    let bytes = 0;
    for (const v of violations) {
      if (parts.length === MAX_VIOLATIONS_SHOWN) break;
      const text = describeViolation(v);
      const size = Buffer.byteLength(text, "utf8") + 2;
      if (parts.length > 0 && bytes + size > MAX_MESSAGE_BYTES) break;
      parts.push(text);
      bytes += size;
    }
    const more = violations.length - parts.length;
    super(more > 0 ? `${parts.join("; ")}; and ${more} more (${violations.length} violations in all)` : parts.join("; "));
    this.shown = violations.slice(0, parts.length);
  }
  static of(field: string, value: string, rule: string): InvalidError {
    return new InvalidError([{ field, value, rule }]);
  }
}

/** NOT_FOUND: the message names what was looked up (and, when given, why it cannot exist). */
export class NotFoundError extends NodeplaneError {
  readonly kind = "NotFound";
  constructor(what: string, name: string, why?: string) {
    super(`${what} ${quote(name, 253)} not found${why ? `: ${why}` : ""}`);
  }
}

/** ALREADY_EXISTS: the message names the taken name. */
export class AlreadyExistsError extends NodeplaneError {
  readonly kind = "AlreadyExists";
  constructor(what: string, name: string) {
    super(`${what} ${quote(name, 253)} already exists`);
  }
}

/** ABORTED: a resource_version precondition failed. */
export class ConflictError extends NodeplaneError {
  readonly kind = "Conflict";
  constructor(
    what: string,
    name: string,
    readonly expected: string,
    readonly current: string,
  ) {
    super(
      `${what} ${quote(name, 253)} was modified: expected resource_version ${expected}, current is ${current}; read it again and retry`,
    );
  }
}

/** OUT_OF_RANGE: a revision older than the retained history was asked for. */
export class CompactedError extends NodeplaneError {
  readonly kind = "Compacted";
  constructor(
    readonly requested: number,
    readonly oldest: number,
  ) {
    super(
      `resource_version ${requested} is too old: it has been compacted; the oldest revision still available is ${oldest} (list again and watch from the list's resource_version)`,
    );
  }
}

/** RESOURCE_EXHAUSTED: a limit was hit. The message names the limit and its value. */
export class ResourceExhaustedError extends NodeplaneError {
  readonly kind = "ResourceExhausted";
}

/** UNAVAILABLE: shutting down, store unreachable. The message says what is unavailable. */
export class UnavailableError extends NodeplaneError {
  readonly kind = "Unavailable";
}

/** UNAUTHENTICATED: no credential where one is needed, or a credential that is not valid. Never quotes a secret. */
export class UnauthenticatedError extends NodeplaneError {
  readonly kind = "Unauthenticated";
}

/** PERMISSION_DENIED: the identity may not do this. The message names the identity, the action and the object. */
export class PermissionDeniedError extends NodeplaneError {
  readonly kind = "PermissionDenied";
}

/** FAILED_PRECONDITION: the object is not in a state the request needs (a node without an agent endpoint); retrying will not help until it is. */
export class FailedPreconditionError extends NodeplaneError {
  readonly kind = "FailedPrecondition";
}
