/**
 * The worker side of bench/ipc.ts: answer the parent's messages, report failures as "fatal",
 * exit when the parent goes away; and small helpers the workers share.
 */

/** Every worker message has a type; "fatal" ends the worker. */
export interface Fatal {
  type: "fatal";
  message: string;
}

/**
 * The worker's side: `handle` answers each parent message (a returned message is sent back;
 * a throw is sent as "fatal" and ends the worker). The worker exits when the parent disconnects.
 */
export function serveParent<In extends { type: string }, Out extends { type: string }>(
  what: string,
  handle: (msg: In, send: (out: Out) => void) => Promise<Out | undefined>,
  onExit: () => void = () => {},
): (out: Out) => void {
  if (!process.send) {
    process.stderr.write(`${what}: must be spawned by its benchmark with an IPC channel\n`);
    process.exit(2);
  }
  const send = (out: Out | Fatal): void => {
    if (process.connected) process.send!(out);
  };
  process.on("disconnect", () => {
    onExit();
    process.exit(process.exitCode ?? 0);
  });
  process.on("message", (raw: unknown) => {
    handle(raw as In, send).then(
      (out) => {
        if (out) send(out);
      },
      (err: unknown) => {
        send({ type: "fatal", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
        process.exitCode = 1;
        process.disconnect();
      },
    );
  });
  return send;
}

export const epochNow = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** A small seeded PRNG (mulberry32), so runs pick the same "random" nodes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
