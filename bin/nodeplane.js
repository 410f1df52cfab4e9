#!/usr/bin/env -S node --max-semi-space-size=64
// Runs the compiled CLI (npm ci / npm run build produce dist/). The young generation gets 64 MiB
// semi-spaces (V8 default: 16): a server with 100,000 heartbeat streams allocates a little per
// renewal, and fewer, larger scavenges keep its answers from queueing behind the collector
// (npm start passes the same flag; README "Performance").
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/src/cli/nodeplane.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write("nodeplane: not built yet: run `npm run build` (npm ci does it too)\n");
  process.exit(1);
}
await import(main.href);
