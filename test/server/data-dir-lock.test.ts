/**
 * Issue 11, defect 5: one server per --data-dir. A second `nodeplane serve` on the same
 * directory used to start and serve a split view; now it refuses to start, naming the holder.
 * The lock goes with its process: after kill -9 of the holder the next server starts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NodeClient } from "../../src/client/client.js";
import { createLogger } from "../../src/log.js";
import { NodeplaneServer } from "../../src/server/server.js";
import { type Spawned, spawnServer } from "../support/process.js";
import { agentNode } from "../support/server.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "nodeplane-lock-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function spawn(dir: string): Promise<Spawned> {
  const s = await spawnServer(["--listen", "127.0.0.1:0", "--http-listen", "", "--data-dir", dir, "--log-level", "warn"]);
  cleanups.push(async () => {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
    await s.exited;
  });
  return s;
}

describe("data directory lock", () => {
  it("a second server process on the same --data-dir refuses to start, naming the holder; after kill -9 of the holder the next one starts", async () => {
    const dir = dataDir();
    const first = await spawn(dir);
    const client = new NodeClient(`127.0.0.1:${first.grpcPort}`);
    cleanups.push(() => client.close());
    await client.register(agentNode("kept"));

    const second = await spawn(dir).catch((e: unknown) => e as Error);
    expect(second).toBeInstanceOf(Error);
    expect((second as Error).message).toContain(
      `nodeplane: data directory ${dir} is in use by another nodeplane server (pid ${first.child.pid} on host ${hostname()}, listening on 127.0.0.1:${first.grpcPort}, since `,
    );
    expect((await client.getNode("kept")).metadata?.name).toBe("kept"); // the holder is untouched

    first.child.kill("SIGKILL");
    await first.exited;
    const third = await spawn(dir);
    const again = new NodeClient(`127.0.0.1:${third.grpcPort}`);
    cleanups.push(() => again.close());
    expect((await again.getNode("kept")).metadata?.name).toBe("kept");
  });

  it("a second server in the same process is refused too, and the directory is free again after shutdown", async () => {
    const dir = dataDir();
    const start = (): Promise<NodeplaneServer> =>
      NodeplaneServer.start({ listen: "127.0.0.1:0", httpListen: null, dataDir: dir, logger: createLogger("silent"), nodeLifecycle: false });
    const first = await start();
    await expect(start()).rejects.toThrow(`data directory ${dir} is in use by another nodeplane server (pid ${process.pid} on host ${hostname()}, listening on 127.0.0.1:${first.port}`);
    await first.shutdown();
    const next = await start();
    await next.shutdown();
  });
});
