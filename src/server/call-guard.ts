/**
 * What every call on the gRPC port passes through, whoever implements its service.
 *
 * Requests that cannot be decoded are the client's fault, and answered INVALID_ARGUMENT.
 * grpc-js answers a request whose deserializer throws with INTERNAL ("Error deserializing
 * request") from inside the call — the code every client reads as "the server broke". So every
 * service is added through `tolerantServer`: its request deserializers never throw but return an
 * `Undecodable` naming what failed, and INVALID_ARGUMENT naming the method and the decoder's
 * reason is answered before any handler (or authorization) sees it. This holds for the health and
 * reflection services too, whose handlers are not ours.
 *
 * Two places do that, one per server shape (`serverInterceptors`):
 * - With other interceptors (authentication on: the gate), the `callGuard` interceptor, first in
 *   the list, so before authorization looks at a message.
 * - With none (authentication off), the handler wrappers `tolerantServer` puts around every
 *   method. An interceptor costs every call a ServerInterceptingCall with its listener and
 *   responder (at 100,000 heartbeat streams, memory the garbage collector walks again and again),
 *   two more hops per message, and one message in flight per stream: grpc-js's intercepting call
 *   keeps messages in order only so, which disables batched writes (batched-writes.ts) for
 *   Heartbeat answers and Watch events.
 *
 * The decoders note each request's size as received (`wireSize`) when asked (the gate measures
 * requests against a limit with it): a re-encoding of the decoded message drops unknown fields,
 * and throws for values the decoder accepts but cannot encode (a timestamp beyond JavaScript's
 * dates).
 *
 * A status's details are bounded (MAX_DETAILS_BYTES; without interceptors: the error a unary
 * handler calls back with, and any error a streaming handler emits): ours already are
 * (src/errors.ts), but a library's handler may quote the request back — grpc-health-check's Check names the unknown
 * service it was asked about, and a 256 KiB name made trailers no client accepts, so the call
 * never ended for the client.
 */
import * as grpc from "@grpc/grpc-js";

class Undecodable {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {}
}

/** Each decoded request's size in bytes as received, by the decoded message. */
const wireSizes = new WeakMap<object, number>();

/** The size in bytes `message` had on the wire; undefined for one not decoded by a tolerant service. */
export function wireSize(message: unknown): number | undefined {
  return typeof message === "object" && message !== null ? wireSizes.get(message) : undefined;
}

/** Longest decoder reason quoted back to the client. */
const MAX_REASON = 200;

function tolerant(definition: grpc.ServiceDefinition, measure: boolean): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          const message = decode(bytes);
          if (measure && typeof message === "object" && message !== null) wireSizes.set(message, bytes.length);
          return message;
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          return new Undecodable(method.path, reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON)}…` : reason);
        }
      },
    };
  }
  return out;
}

function invalid(message: Undecodable): grpc.StatusObject {
  return {
    code: grpc.status.INVALID_ARGUMENT,
    details: `request to ${message.path} is not a valid protobuf message of its type: ${message.reason}`,
    metadata: new grpc.Metadata(),
  };
}

/** Whether grpc-js takes `err`'s code (and so its details) as it is (server-call.js, serverErrorToStatus). */
const ownCode = (err: object): boolean => "code" in err && typeof err.code === "number" && Number.isInteger(err.code);

/**
 * The status grpc-js sends for a handler's error (as serverErrorToStatus reads it: the code when
 * an integer, then its details, else the message), with the details bounded.
 */
function boundedStatus(err: Partial<grpc.StatusObject>): Partial<grpc.StatusObject> {
  const own = ownCode(err);
  const raw: unknown = own && typeof err.details === "string" ? err.details : "message" in err ? err.message : "Unknown Error";
  const details = typeof raw === "string" ? raw : String(raw);
  return { code: own ? err.code : grpc.status.UNKNOWN, details: bounded(details), metadata: err.metadata ?? new grpc.Metadata() };
}

/**
 * Bounds the details of an error a streaming handler emits, before grpc-js's own listener (the
 * stream's first, registered as it is made) turns it into the status — the error itself is
 * changed, the one place grpc-js reads it.
 */
function boundEmittedErrors(call: NodeJS.EventEmitter): void {
  call.prependListener("error", (err: unknown) => {
    if (typeof err !== "object" || err === null) return;
    const e = err as { details?: unknown; message?: unknown };
    if (ownCode(err) && typeof e.details === "string") e.details = bounded(e.details);
    else if (typeof e.message === "string") e.message = bounded(e.message);
  });
}

/**
 * `handler` guarded as the callGuard interceptor guards it, for a server without interceptors:
 * an undecodable request is answered INVALID_ARGUMENT and never reaches it; a unary error's
 * details are bounded.
 */
function guarded(method: grpc.MethodDefinition<unknown, unknown>, handler: grpc.UntypedHandleCall): grpc.UntypedHandleCall {
  if (!method.requestStream && !method.responseStream) {
    const unary = handler as grpc.handleUnaryCall<unknown, unknown>;
    const guard: grpc.handleUnaryCall<unknown, unknown> = (call, callback) => {
      const request: unknown = call.request;
      if (request instanceof Undecodable) return callback(invalid(request));
      unary(call, (err, value, trailer, flags) => callback(err && boundedStatus(err), value, trailer, flags));
    };
    return guard;
  }
  if (!method.requestStream) {
    const serverStreaming = handler as grpc.handleServerStreamingCall<unknown, unknown>;
    const guard: grpc.handleServerStreamingCall<unknown, unknown> = (call) => {
      const request: unknown = call.request;
      if (request instanceof Undecodable) return void call.emit("error", invalid(request));
      boundEmittedErrors(call);
      serverStreaming(call);
    };
    return guard;
  }
  // grpc-js's client-streaming call has no way to end it with a status but the handler's callback.
  if (!method.responseStream) throw new Error(`${method.path}: client-streaming methods cannot be served without interceptors`);
  const bidi = handler as grpc.handleBidiStreamingCall<unknown, unknown>;
  const guard: grpc.handleBidiStreamingCall<unknown, unknown> = (call) => {
    // grpc-js hands each received message to the stream's push(): an undecodable one ends the
    // call instead, and nothing the handler writes after goes out (grpc-js's stream, ended,
    // would otherwise never send the trailers).
    const push = call.push;
    const emit = call.emit;
    let failed = false;
    call.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (!(chunk instanceof Undecodable)) return push.call(call, chunk, encoding);
      if (!failed) {
        failed = true;
        call.write = () => true;
        call.emit("error", invalid(chunk));
        // The status is this one: a handler's later error must not replace it.
        call.emit = (event: string | symbol, ...args: unknown[]): boolean => event !== "error" && (Reflect.apply(emit, call, [event, ...args]) as boolean);
      }
      return true;
    };
    boundEmittedErrors(call);
    bidi(call);
  };
  return guard;
}

/**
 * `server` whose addService makes every added service's request decoding tolerant; its handlers
 * are guarded too unless `interceptors` (what the server was made with: serverInterceptors')
 * include the callGuard; `measure`: requests' sizes are noted (wireSize).
 */
export function tolerantServer(server: grpc.Server, o: { interceptors: grpc.ServerInterceptor[]; measure: boolean }): Pick<grpc.Server, "addService"> {
  const guard = !o.interceptors.includes(callGuard);
  return {
    addService: (definition, implementation) => {
      const tolerable = tolerant(definition, o.measure);
      if (!guard) return server.addService(tolerable, implementation);
      // grpc-js finds a method's handler by its name or its original (lower camel case) name.
      const handlers: grpc.UntypedServiceImplementation = { ...implementation };
      for (const [name, method] of Object.entries(definition)) {
        for (const key of [name, method.originalName]) {
          const handler = key === undefined ? undefined : implementation[key];
          // Bound to its implementation, as grpc-js binds the handlers it finds.
          if (key !== undefined && handler) handlers[key] = guarded(method, handler.bind(implementation));
        }
      }
      server.addService(tolerable, handlers);
    },
  };
}

/**
 * The server's interceptors: the guard first, then `others` (authorization); none at all when
 * there are no others — the tolerant services' handlers guard the calls then (see above).
 */
export function serverInterceptors(others: grpc.ServerInterceptor[]): grpc.ServerInterceptor[] {
  return others.length > 0 ? [callGuard, ...others] : [];
}

/** Longest status details sent (in UTF-8 bytes, before grpc's percent-encoding). */
const MAX_DETAILS_BYTES = 4096;

function bounded(details: string): string {
  const bytes = Buffer.from(details);
  if (bytes.length <= MAX_DETAILS_BYTES) return details;
  // Cutting bytes may split a character; the decoder then ends the text with U+FFFD.
  return `${bytes.subarray(0, MAX_DETAILS_BYTES).toString()}… (${bytes.length - MAX_DETAILS_BYTES} more bytes)`;
}

/**
 * The first interceptor of the server: answers INVALID_ARGUMENT for a message
 * `tolerantServer`'s decoders could not decode, and bounds every status's details.
 */
const callGuard: grpc.ServerInterceptor = (_method, call) => {
  // Once this guard has ended the call, a streaming handler still running must not write:
  // grpc-js's stream, already ended, then never sends the trailers and the client waits forever.
  let ended = false;
  const listener = new grpc.ServerListenerBuilder()
    .withOnReceiveMessage((message: unknown, next) => {
      if (!(message instanceof Undecodable)) return next(message);
      ended = true;
      call.sendStatus(invalid(message));
    })
    .build();
  const responder = new grpc.ResponderBuilder()
    .withStart((next) => next(listener))
    .withSendMessage((message: unknown, next) => {
      if (!ended) next(message);
    })
    .withSendStatus((status, next) => {
      if (ended) return;
      ended = true;
      next(status.details === undefined ? status : { ...status, details: bounded(status.details) });
    })
    .build();
  return new grpc.ServerInterceptingCall(call, responder);
};
