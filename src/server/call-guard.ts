/**
 * What every call on the gRPC port passes through, whoever implements its service.
 *
 * Requests that cannot be decoded are the client's fault, and answered INVALID_ARGUMENT.
 * grpc-js answers a request whose deserializer throws with INTERNAL ("Error deserializing
 * request") from inside the call, where no interceptor sees it — the code every client reads
 * as "the server broke". So every service is added through `tolerantServer`: its request
 * deserializers never throw but return an `Undecodable` naming what failed, and the
 * `callGuard` interceptor (first in the server's list, so before authorization looks
 * at a message) answers INVALID_ARGUMENT naming the method and the decoder's reason. No
 * handler ever sees an undecodable request; this holds for the health and reflection services
 * too, whose handlers are not ours.
 *
 * The guard's decoders also note each request's size as received (`wireSize`): what a limit on
 * request size must measure — a re-encoding of the decoded message drops unknown fields, and
 * throws for values the decoder accepts but cannot encode (a timestamp beyond JavaScript's dates).
 *
 * A status's details are bounded (MAX_DETAILS_BYTES): ours already are (src/errors.ts), but a
 * library's handler may quote the request back — grpc-health-check's Check names the unknown
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

function tolerant(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          const message = decode(bytes);
          if (typeof message === "object" && message !== null) wireSizes.set(message, bytes.length);
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

/** `server` whose addService makes every added service's request decoding tolerant. */
export function tolerantServer(server: grpc.Server): Pick<grpc.Server, "addService"> {
  return {
    addService: (definition, implementation) => server.addService(tolerant(definition), implementation),
  };
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
export const callGuard: grpc.ServerInterceptor = (_method, call) => {
  // Once this guard has ended the call, a streaming handler still running must not write:
  // grpc-js's stream, already ended, then never sends the trailers and the client waits forever.
  let ended = false;
  const listener = new grpc.ServerListenerBuilder()
    .withOnReceiveMessage((message: unknown, next) => {
      if (!(message instanceof Undecodable)) return next(message);
      ended = true;
      call.sendStatus({
        code: grpc.status.INVALID_ARGUMENT,
        details: `request to ${message.path} is not a valid protobuf message of its type: ${message.reason}`,
      });
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
