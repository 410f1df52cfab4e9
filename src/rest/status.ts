/**
 * Kubernetes `Status` objects: the REST view's one error map. Domain errors (src/errors.ts)
 * and the REST layer's own request errors become a Status with the HTTP code and reason
 * kubectl and client-go act on (404 NotFound, 409 AlreadyExists/Conflict, 422 Invalid with
 * causes, 410 Expired, 401/403 from the access hook, 400/405/406/413/415 for bad requests).
 * Anything else is a 500 InternalError naming a request id; its cause is logged, never sent.
 */
import { AlreadyExistsError, CompactedError, ConflictError, InvalidError, NodeplaneError, NotFoundError } from "../errors.js";
import type { ErrorKind } from "../errors.js";
import { kubeFieldPath } from "./field-names.js";

export type StatusReason =
  | "BadRequest"
  | "Unauthorized"
  | "Forbidden"
  | "NotFound"
  | "MethodNotAllowed"
  | "NotAcceptable"
  | "AlreadyExists"
  | "Conflict"
  | "Expired"
  | "RequestEntityTooLarge"
  | "UnsupportedMediaType"
  | "Invalid"
  | "TooManyRequests"
  | "InternalError"
  | "ServiceUnavailable"
  | "Timeout";

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** A request the REST layer itself refuses (bad parameter, media type, size, method, access). */
export class RestError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = "RestError";
  }
}

export const badRequest = (message: string): RestError => new RestError(400, "BadRequest", message);

/** What the failed request was about, for Kubernetes-shaped messages (`nodes "x" not found`). */
export interface StatusSubject {
  /** Plural resource, e.g. "nodes", "leases". */
  resource: string;
  /** API group ("" for the core group). */
  group: string;
  /** Kind, e.g. "Node". */
  kind: string;
  name?: string;
}

const HTTP: Record<ErrorKind, { code: number; reason: StatusReason }> = {
  Invalid: { code: 422, reason: "Invalid" },
  NotFound: { code: 404, reason: "NotFound" },
  AlreadyExists: { code: 409, reason: "AlreadyExists" },
  Conflict: { code: 409, reason: "Conflict" },
  Compacted: { code: 410, reason: "Expired" },
  ResourceExhausted: { code: 429, reason: "TooManyRequests" },
  Unavailable: { code: 503, reason: "ServiceUnavailable" },
  Unauthenticated: { code: 401, reason: "Unauthorized" },
  PermissionDenied: { code: 403, reason: "Forbidden" },
  FailedPrecondition: { code: 400, reason: "BadRequest" },
};

export interface MappedStatus {
  status: KubeStatus;
  /** Not a known error: the caller logs the cause. */
  internal: boolean;
}

function failure(code: number, reason: StatusReason, message: string, details?: StatusDetails): KubeStatus {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details && { details }), code };
}

/** `nodes "x"` or `leases.coordination.k8s.io "x"`, as Kubernetes names an object in messages. */
function qualified(subject: StatusSubject, name: string): string {
  return `${subject.group ? `${subject.resource}.${subject.group}` : subject.resource} ${JSON.stringify(name)}`;
}

/** The Status for an error; `subject` names what the request was about when there is one. */
export function toStatus(err: unknown, requestId: string, subject?: StatusSubject): MappedStatus {
  if (err instanceof RestError) return { status: failure(err.code, err.reason, err.message, err.details), internal: false };
  if (!(err instanceof NodeplaneError)) {
    return { status: failure(500, "InternalError", `Internal error occurred: internal error (request id ${requestId})`), internal: true };
  }
  const { code, reason } = HTTP[err.kind];
  const name = subject?.name ?? "";
  const who = subject && { name, ...(subject.group && { group: subject.group }), kind: subject.resource };
  if (err instanceof NotFoundError && subject) {
    return { status: failure(code, reason, `${qualified(subject, name)} not found`, who), internal: false };
  }
  if (err instanceof AlreadyExistsError && subject) {
    return { status: failure(code, reason, `${qualified(subject, name)} already exists`, who), internal: false };
  }
  if (err instanceof ConflictError && subject) {
    const message =
      `Operation cannot be fulfilled on ${qualified(subject, name)}: the object has been modified ` +
      `(resourceVersion ${err.expected} was expected, the current one is ${err.current}); ` +
      "please apply your changes to the latest version and try again";
    return { status: failure(code, reason, message, who), internal: false };
  }
  if (err instanceof InvalidError) {
    const causes: StatusCause[] = err.violations.map((v) => ({
      reason: "FieldValueInvalid",
      message: `Invalid value: ${JSON.stringify(v.value)}: ${v.rule}`,
      field: kubeFieldPath(v.field),
    }));
    const text = causes.map((c) => `${c.field}: ${c.message}`).join(", ");
    const message = subject ? `${subject.kind} ${JSON.stringify(name)} is invalid: ${text}` : text;
    return { status: failure(code, reason, message, { ...who, ...(subject && { kind: subject.kind }), causes }), internal: false };
  }
  if (err instanceof CompactedError) {
    return { status: failure(code, reason, `too old resource version: ${err.requested} (${err.oldest}): ${err.message}`), internal: false };
  }
  return { status: failure(code, reason, err.message, who), internal: false };
}

/** A Status for a request that succeeded without an object to answer (DELETE of a node). */
export function success(subject: StatusSubject & { name: string }, uid: string): KubeStatus {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    details: { name: subject.name, ...(subject.group && { group: subject.group }), kind: subject.resource, uid },
    code: 200,
  };
}
