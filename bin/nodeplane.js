#!/usr/bin/env -S node --max-semi-space-size=64 --no-allocation-site-pretenuring
// Runs the compiled CLI (npm ci / npm run build produce dist/). Two V8 flags for the server
// (npm start passes the same; README "Performance"):
// - The young generation gets 64 MiB semi-spaces (V8 default: 16): a server with 100,000
//   heartbeat streams allocates a little per renewal, and fewer, larger scavenges keep its
//   answers from queueing behind the collector.
// - No allocation-site pretenuring: when 100,000 agents reconnect at once, the first
//   checkpoints are large and slow, nearly everything they allocate outlives a scavenge, and V8
//   then allocates every later object of those sites (a checkpoint's transactions, results and
//   events, thousands a second) straight in the old generation, where it dies: a full collection
//   every ~40 s, each blocking the event loop for 0.5-0.9 s.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/src/cli/nodeplane.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write("nodeplane: not built yet: run `npm run build` (npm ci does it too)\n");
  process.exit(1);
}
await import(main.href);
