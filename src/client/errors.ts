/**
 * Errors the SDK throws: one class per gRPC status code, each carrying the code and the
 * server's message, so callers can `catch (e) { if (e instanceof NotFoundError) … }`.
 */
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

export class RpcError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
    readonly metadata: Metadata = new Metadata(),
  ) {
    super(`${status[code] ?? code}: ${details}`);
    this.name = new.target.name;
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
};

export function fromServiceError(err: ServiceError): RpcError {
  const Cls = CLASSES[err.code as status] ?? RpcError;
  return new Cls(err.code, err.details || err.message, err.metadata);
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number";
}
