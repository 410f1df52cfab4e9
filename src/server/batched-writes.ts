/**
 * Several messages per event-loop turn on a server stream.
 *
 * grpc-js's ServerWritableStream is a Writable without `_writev`: it hands one message to the
 * HTTP/2 stream and waits for that write's callback (the bytes went out, at the earliest one
 * event-loop turn later) before handing over the next. So one stream carries at most one message
 * per loop turn, whatever the flow-control window and the free CPU: about 350 a second when a
 * loaded server's loop turns every 3 ms, less than the 1,000 changes a second an all-node watcher
 * must take (issue 7, bench/watch-fanout.ts). Given `_writev`, the Writable hands every message
 * buffered meanwhile over at once, in order. Backpressure is unchanged: HTTP/2 flow control still
 * holds the bytes back, a write's callback still waits for them, and `write()` still returns
 * false past the Writable's high-water mark.
 *
 * This relies on a grpc-js internal (the stream's `call`, checked at run time; grpc-js 1.14) and
 * is only safe when that call is grpc-js's base call: a server interceptor's
 * ServerInterceptingCall keeps messages in order only with one in flight (grpc-node issue 2899),
 * so with interceptors (authentication on: see call-guard.ts) the stream is left as it is.
 */
import { ServerInterceptingCall, type ServerDuplexStream, type ServerWritableStream } from "@grpc/grpc-js";

interface MessageSink {
  sendMessage(message: unknown, callback: () => void): void;
}

const isSink = (x: unknown): x is MessageSink =>
  typeof x === "object" && x !== null && typeof (x as { sendMessage?: unknown }).sendMessage === "function";

const noop = (): void => {};

/** Let `call` pass every buffered message to HTTP/2 at once. False when it cannot (left as it was). */
export function batchWrites<Req, Res>(call: ServerWritableStream<Req, Res> | ServerDuplexStream<Req, Res>): boolean {
  const inner: unknown = Reflect.get(call, "call");
  if (!isSink(inner) || inner instanceof ServerInterceptingCall) return false;
  const writev = (chunks: ReadonlyArray<{ chunk: unknown }>, done: () => void): void => {
    const last = chunks.length - 1;
    // The HTTP/2 stream keeps the order; the Writable waits only for the last one's callback.
    chunks.forEach(({ chunk }, i) => inner.sendMessage(chunk, i === last ? done : noop));
  };
  Object.defineProperty(call, "_writev", { value: writev, configurable: true, writable: true });
  return true;
}
