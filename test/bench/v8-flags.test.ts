/**
 * The server runs with the same V8 flags however it is started: bin/nodeplane.js (its shebang),
 * `npm start` (package.json) and the benchmarks (bench/harness.ts), so that what the benchmarks
 * measure is what a user runs. And this Node accepts them.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { NODEPLANE_V8_FLAGS } from "../../bench/harness.js";

const root = new URL("../../", import.meta.url);

describe("the server's V8 flags", () => {
  it("bin/nodeplane.js, npm start and the benchmarks pass the same ones", () => {
    const shebang = readFileSync(new URL("bin/nodeplane.js", root), "utf8").split("\n")[0]!;
    expect(shebang.split(" ")).toEqual(["#!/usr/bin/env", "-S", "node", ...NODEPLANE_V8_FLAGS]);
    const start = (JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { scripts: { start: string } }).scripts.start;
    expect(start).toContain(`node ${NODEPLANE_V8_FLAGS.join(" ")} bin/nodeplane.js serve`);
    expect(NODEPLANE_V8_FLAGS).toContain("--no-allocation-site-pretenuring");
  });

  it("are accepted by this Node", () => {
    const out = execFileSync(process.execPath, [...NODEPLANE_V8_FLAGS, "-p", "require('node:v8').getHeapStatistics().total_heap_size > 0"], { encoding: "utf8" });
    expect(out.trim()).toBe("true");
  });
});
