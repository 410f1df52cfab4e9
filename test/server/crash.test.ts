/**
 * Durable before acknowledged: a server killed with SIGKILL in the middle of a concurrent
 * write load loses no write it acknowledged — every acknowledged revision is readable (and
 * watchable) after a restart on the same data dir.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NodeClient } from "../../src/client/client.js";
import { agentNode, collect } from "../support/server.js";
import { spawnServer } from "../support/process.js";

const dataDir = mkdtempSync(join(tmpdir(), "nodeplane-crash-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const WORKERS = 24;
const KILL_AFTER = 1500;

describe("SIGKILL during a concurrent write load", () => {
  it("loses no acknowledged write", async () => {
    const args = ["--listen", "127.0.0.1:0", "--http-listen", "", "--data-dir", dataDir, "--log-level", "warn"];
    const first = await spawnServer(args);
    const client = new NodeClient(`127.0.0.1:${first.grpcPort}`, { timeoutMs: 10_000 });
    const start = Number((await client.listNodes()).resourceVersion);

    /** Per node: the last acknowledged counter and revision of its status. */
    const acked = new Map<string, { counter: number; revision: number }>();
    const ackedRevisions: number[] = [];
    let count = 0;
    let killed = false;
    let reachedTarget!: () => void;
    const target = new Promise<void>((resolve) => (reachedTarget = resolve));
    const worker = async (w: number): Promise<void> => {
      const name = `crash-${w}`;
      try {
        await client.register(agentNode(name)).then((r) => {
          ackedRevisions.push(Number(r.node?.metadata?.resourceVersion));
        });
        for (let i = 1; !killed; i++) {
          const node = await client.updateStatus(name, { capacity: { counter: String(i) } });
          const revision = Number(node.metadata?.resourceVersion);
          acked.set(name, { counter: i, revision });
          ackedRevisions.push(revision);
          if (++count === KILL_AFTER) reachedTarget();
        }
      } catch {
        // The kill cuts calls off mid-flight: those were never acknowledged.
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    await target;
    first.child.kill("SIGKILL");
    killed = true;
    expect((await first.exited).signal).toBe("SIGKILL");
    await load;
    client.close();
    expect(ackedRevisions.length).toBeGreaterThanOrEqual(KILL_AFTER);

    const second = await spawnServer(args);
    const after = new NodeClient(`127.0.0.1:${second.grpcPort}`);
    try {
      for (const [name, last] of acked) {
        const node = await after.getNode(name);
        expect(Number(node.status?.capacity?.counter), name).toBeGreaterThanOrEqual(last.counter);
        expect(Number(node.metadata?.resourceVersion), name).toBeGreaterThanOrEqual(last.revision);
      }
      // Every acknowledged revision is in the durable history, in order.
      const maxAcked = Math.max(...ackedRevisions);
      const events = await collect(after.watch({ resourceVersion: String(start) }), (seen) => Number(seen.at(-1)!.resourceVersion) >= maxAcked);
      const seen = new Set(events.map((e) => Number(e.resourceVersion)));
      expect(ackedRevisions.filter((r) => !seen.has(r))).toEqual([]);
    } finally {
      after.close();
      second.child.kill("SIGTERM");
      expect((await second.exited).code).toBe(0);
    }
  });
});
