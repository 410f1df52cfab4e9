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
  | "PermissionDenied";

/** One broken rule: which field, the offending value, the rule. */
export interface FieldViolation {
  field: string;
  value: string;
  rule: string;
}

function describeViolation(v: FieldViolation): string {
  return `${v.field}: ${quote(v.value)}: ${v.rule}`;
}

/** A request broke one or more rules (INVALID_ARGUMENT). */
export class InvalidError extends NodeplaneError {
  readonly kind = "Invalid";
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map(describeViolation).join("; "));
  }
  static of(field: string, value: string, rule: string): InvalidError {
    return new InvalidError([{ field, value, rule }]);
  }
}

/** NOT_FOUND: the message names what was looked up. */
export class NotFoundError extends NodeplaneError {
  readonly kind = "NotFound";
  constructor(what: string, name: string) {
    super(`${what} ${quote(name, 253)} not found`);
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
