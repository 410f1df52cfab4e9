/** Server-stream backpressure: wait for 'drain' before writing more (or until the stream is gone). */
import type { EventEmitter } from "node:events";

/**
 * Resolves when the stream can take more or is gone ('cancelled': a gRPC call the client left;
 * 'close': an HTTP response, or a stream ended). Leaves nothing behind once it has: a
 * long-lived stream waits here many times (before, a promise passed in to stop waiting early
 * kept a reaction for every wait until it settled, which a watch's end may not for days).
 */
export function drained(stream: EventEmitter & { readonly destroyed?: boolean }): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed === true) return resolve();
    const done = (): void => {
      stream.off("drain", done);
      stream.off("cancelled", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("cancelled", done);
    stream.on("close", done);
  });
}
