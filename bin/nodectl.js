#!/usr/bin/env node
// Runs the compiled operator CLI (npm ci / npm run build produce dist/).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/src/cli/nodectl.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write("nodectl: not built yet: run `npm run build` (npm ci does it too)\n");
  process.exit(1);
}
await import(main.href);
