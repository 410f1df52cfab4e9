/**
 * `nodectl`: the operator CLI, shaped like kubectl (src/cli/nodectl/program.ts has the
 * commands). Ctrl-C ends a watch cleanly; output is flushed before the process exits.
 */
import { homedir } from "node:os";
import { text } from "node:stream/consumers";
import { silenceIpServernameWarning } from "../auth/client-credentials.js";
import { run } from "./nodectl/program.js";

silenceIpServernameWarning();

const interrupt = new AbortController();
const stop = (): void => {
  // A watch ends cleanly (exit 0); any other command still running is cut short.
  interrupt.abort();
  setTimeout(() => process.exit(130), 1_000).unref();
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
// A reader that went away (nodectl get nodes | head) is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
});

const code = await run(process.argv, {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  now: () => Date.now(),
  readStdin: () => text(process.stdin),
  signal: interrupt.signal,
  env: process.env,
  home: homedir(),
}).catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});

// Exit once both streams have been written out (pending gRPC timers must not keep us alive).
await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
await new Promise<void>((resolve) => process.stderr.write("", () => resolve()));
process.exit(code);
