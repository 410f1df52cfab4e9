/**
 * Start-up: the server serves before its watch cache has loaded (reads and writes from the
 * store, a watch waits for the cache and misses nothing), /readyz says it is not ready until
 * the cache has loaded and the controllers have synced, and the controller judges no node
 * before then. The cache's load is held by a gated store, so nothing sleeps.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NodeClient } from "../../src/client/client.js";
import { UnavailableError } from "../../src/client/errors.js";
import { FakeClock } from "../../src/clock.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { createLogger } from "../../src/log.js";
import { NODE_PREFIX } from "../../src/model/keys.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { NodeplaneServer } from "../../src/server/server.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { agentNode } from "../support/server.js";
import { gateFirstList } from "../watch/gated-store.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("start-up", () => {
  it("answers calls while the watch cache loads, and is ready only once it has loaded and the controller synced", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nodeplane-startup-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const clock = new FakeClock();
    const inner = await SqliteStore.open({ dir });
    // A node written before this server started, long silent by the time it starts.
    await new NodeRegistry({ store: inner, clock }).register(Node.fromPartial(agentNode("before")));
    clock.advance(3_600_000);

    const gated = gateFirstList(inner, NODE_PREFIX);
    const server = await NodeplaneServer.start({
      listen: "127.0.0.1:0",
      httpListen: "127.0.0.1:0",
      dataDir: dir,
      store: gated.store,
      clock,
      logger: createLogger("silent"),
      nodeLifecycle: { monitorPeriodMs: 3_600_000, monitorGracePeriodMs: 40_000 },
    });
    cleanups.push(() => server.shutdown());
    const client = new NodeClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => client.close());
    await gated.held;
    const readyz = async (): Promise<{ status: number; body: string }> => {
      const res = await fetch(`http://127.0.0.1:${server.httpPort}/readyz`);
      return { status: res.status, body: await res.text() };
    };

    // Serving, not ready.
    expect(await readyz()).toEqual({ status: 503, body: "not ready: the watch cache is still loading\n" });
    expect((await client.getNode("before")).metadata?.name).toBe("before");
    const list = await client.listNodes({});
    expect(list.nodes.map((n) => n.metadata?.name)).toEqual(["before"]);
    const events = client.watch({ resourceVersion: list.resourceVersion })[Symbol.asyncIterator]();
    const monitored = server.controller!.monitor(); // waits for the sync: no node judged on half-loaded data
    await client.register(agentNode("during"));
    expect(server.controller!.probeTime("before")).toBeUndefined();

    gated.open();
    await server.whenReady();
    await monitored;
    expect(await readyz()).toEqual({ status: 200, body: "ok\n" });
    const first = await events.next();
    expect(first.value).toMatchObject({ type: "ADDED", node: { metadata: { name: "during" } } });
    await events.return?.(undefined);
    // Seen at the sync, with a full grace period from then however long it was silent before.
    expect(server.controller!.probeTime("before")).toBe(clock.now());
    expect((await client.getNode("before")).status?.conditions.find((c) => c.type === "Ready")?.status).toBe("True");
  });

  it("shuts down in order while the watch cache is still loading", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nodeplane-startup-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const inner = await SqliteStore.open({ dir });
    const gated = gateFirstList(inner, NODE_PREFIX);
    const server = await NodeplaneServer.start({
      listen: "127.0.0.1:0",
      httpListen: null,
      dataDir: dir,
      store: gated.store,
      logger: createLogger("silent"),
      nodeLifecycle: { monitorPeriodMs: 3_600_000 },
    });
    await gated.held;
    const client = new NodeClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => client.close());
    const watch = client.watch({})[Symbol.asyncIterator]().next().then(
      () => undefined,
      (err: unknown) => err,
    );
    await client.register(agentNode("n1")); // answered: the watch is waiting for the cache by now
    const down = server.shutdown();
    gated.open(); // the page in flight ends; nothing after it starts
    await down;
    expect(await watch).toBeInstanceOf(UnavailableError);
    await server.whenReady(); // settles: the parts it waited on were stopped
  });
});
