/** Bounded everything: each limit answers RESOURCE_EXHAUSTED naming the limit and its value. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/client/client.js";
import { ResourceExhaustedError } from "../../src/client/errors.js";
import { type Harness, startHarness } from "../support/server.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ maxMessageBytes: 64 * 1024, maxWatchers: 1, httpListen: "127.0.0.1:0" });
});
afterAll(() => h.close());

describe("limits", () => {
  it("refuses a message over --max-message-size", async () => {
    const err = await h.client
      .createNode({ metadata: { name: "big", annotations: { blob: "x".repeat(100 * 1024) } } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toContain(String(64 * 1024));
  });

  it("refuses a watcher over --max-watchers and accepts one again once a watcher ends", async () => {
    await h.client.createNode({ metadata: { name: "w" } });
    const abort = new AbortController();
    const first = h.client.watch({ sendInitialEvents: true }, { signal: abort.signal })[Symbol.asyncIterator]();
    expect(((await first.next()).value as WatchEvent).type).toBe("ADDED");
    const err = await h.client.watch({})[Symbol.asyncIterator]().next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toContain("watcher limit of 1");
    // A refused watch is not a slow watcher (that metric counts watchers ended for a full queue).
    const metrics = await (await fetch(`http://127.0.0.1:${h.server.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^nodeplane_watch_slow_watchers_total 0$/m);
    abort.abort();
    await first.next().catch(() => undefined);
    // The server releases the slot when it sees the cancel; wait for that by retrying on its answer.
    let admitted = false;
    for (let attempt = 0; attempt < 1000 && !admitted; attempt++) {
      const again = h.client.watch({ sendInitialEvents: true })[Symbol.asyncIterator]();
      const r = await again.next().catch((e: unknown) => e);
      if (r instanceof ResourceExhaustedError) continue;
      expect((r as IteratorResult<WatchEvent>).value.type).toBe("ADDED");
      await again.return?.(undefined);
      admitted = true;
    }
    expect(admitted).toBe(true);
  });
});
