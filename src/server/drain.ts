/** Server-stream backpressure: wait for 'drain' before writing more (or stop waiting early). */
import type { EventEmitter } from "node:events";

/** Resolves when the stream can take more, the client is gone, or `orWhen` settles. */
export function drained(stream: EventEmitter, orWhen?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("cancelled", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("cancelled", done);
    void orWhen?.then(done, done);
  });
}
