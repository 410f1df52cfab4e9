/**
 * Errors the SDK throws: one class per gRPC status code, each carrying the code and the
 * server's message, so callers can `catch (e) { if (e instanceof NotFoundError) … }`.
 */
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { decodeStatusDetails, type FieldViolationDetail, STATUS_DETAILS_KEY } from "../status-details.js";

export type { FieldViolationDetail } from "../status-details.js";

export class RpcError extends Error {
  /**
   * The fields the server named as invalid (INVALID_ARGUMENT), from the standard
   * grpc-status-details-bin trailer: at most the first 20, as in the message; empty otherwise.
   */
  readonly fieldViolations: FieldViolationDetail[];

  constructor(
    readonly code: status,
    readonly details: string,
    readonly metadata: Metadata = new Metadata(),
  ) {
    super(`${status[code] ?? code}: ${details}`);
    this.name = new.target.name;
    this.fieldViolations = violationsOf(metadata);
  }
}

function violationsOf(metadata: Metadata): FieldViolationDetail[] {
  const bytes = metadata.get(STATUS_DETAILS_KEY)[0];
  if (!Buffer.isBuffer(bytes)) return [];
  try {
    return decodeStatusDetails(bytes).fieldViolations;
  } catch {
    return []; // not a google.rpc.Status: the message still says what is wrong
  }
}

export class InvalidArgumentError extends RpcError {}
export class NotFoundError extends RpcError {}
export class AlreadyExistsError extends RpcError {}
/** A resource_version precondition failed (optimistic concurrency). */
export class AbortedError extends RpcError {}
/** A revision older than the retained history: list again and watch from the list's revision. */
export class OutOfRangeError extends RpcError {}
export class ResourceExhaustedError extends RpcError {}
export class UnauthenticatedError extends RpcError {}
export class PermissionDeniedError extends RpcError {}
export class UnavailableError extends RpcError {}
export class DeadlineExceededError extends RpcError {}
export class CancelledError extends RpcError {}
export class InternalError extends RpcError {}
/** The object is not in a state the call needs (e.g. a node without an agent endpoint). */
export class FailedPreconditionError extends RpcError {}

const CLASSES: Partial<Record<status, new (code: status, details: string, metadata?: Metadata) => RpcError>> = {
  [status.INVALID_ARGUMENT]: InvalidArgumentError,
  [status.NOT_FOUND]: NotFoundError,
  [status.ALREADY_EXISTS]: AlreadyExistsError,
  [status.ABORTED]: AbortedError,
  [status.OUT_OF_RANGE]: OutOfRangeError,
  [status.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [status.UNAUTHENTICATED]: UnauthenticatedError,
  [status.PERMISSION_DENIED]: PermissionDeniedError,
  [status.UNAVAILABLE]: UnavailableError,
  [status.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [status.CANCELLED]: CancelledError,
  [status.INTERNAL]: InternalError,
  [status.FAILED_PRECONDITION]: FailedPreconditionError,
};

export function fromServiceError(err: ServiceError): RpcError {
  const Cls = CLASSES[err.code as status] ?? RpcError;
  return new Cls(err.code, err.details || err.message, err.metadata);
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number";
}
