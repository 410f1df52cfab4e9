/**
 * Issue 11, defect 2: a write answered with an error must not be committed, and nothing stored
 * may make reads fail. A Register just under the 4 MiB message limit used to be stored and then
 * answered RESOURCE_EXHAUSTED (its answer was over the limit); every read of it failed after.
 * Now a Node is capped at 1.5 MiB encoded, checked before the commit; and a node stored before
 * the cap existed (written here straight into the store) is answered as a stand-in by reads,
 * lists and watches, which stay healthy.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/client/client.js";
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError, type RpcError } from "../../src/client/errors.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { encodeNode } from "../../src/model/codec.js";
import { nodeKey } from "../../src/model/keys.js";
import { fullNode } from "../../src/model/node.js";
import { createLogger } from "../../src/log.js";
import { NodeplaneServer } from "../../src/server/server.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** An agent's node whose Ready condition message makes it about `bytes` long. */
function nodeOfSize(name: string, bytes: number): ReturnType<typeof agentNode> {
  return agentNode(name, { status: { conditions: [{ type: "Ready", status: "True", reason: "AgentReady", message: "x".repeat(bytes) }] } });
}

const MIB = 1024 * 1024;

describe("object size limit", () => {
  it("refuses a Register just under the message limit before committing it; reads and watches stay healthy", async () => {
    h = await startHarness();
    const client = h.client;
    await client.register(agentNode("small"));
    const list = await client.listNodes({});
    const abort = new AbortController();
    const watch = client.watch({ resourceVersion: list.resourceVersion }, { signal: abort.signal })[Symbol.asyncIterator]();
    const before = await h.server.store.currentRevision();

    const err = (await client.register(nodeOfSize("huge", 4 * MIB - 64 * 1024)).catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.details).toMatch(/^node: "\d+ bytes": is larger than the object size limit of 1572864 bytes/);
    expect(await h.server.store.currentRevision()).toBe(before);
    await expect(client.getNode("huge")).rejects.toBeInstanceOf(NotFoundError);
    expect((await client.listNodes({})).nodes.map((n) => n.metadata?.name)).toEqual(["small"]);

    // The watch opened before lives on and sees the next change.
    await client.updateNode({ ...agentNode("small"), metadata: { name: "small", labels: { next: "change" } } });
    expect(((await watch.next()).value as WatchEvent).node.metadata?.labels).toEqual({ next: "change" });
    abort.abort();
  });

  it("stores a node just under 1.5 MiB and refuses an update that grows it over, changing nothing", async () => {
    h = await startHarness();
    const node = await h.client.createNode(nodeOfSize("big", 1.5 * MIB - 4096));
    expect((await h.client.getNode("big")).status?.conditions[0]?.message.length).toBe(1.5 * MIB - 4096);
    const before = await h.server.store.currentRevision();
    const err = (await h.client
      .updateStatus("big", { conditions: [{ type: "Ready", status: "True", message: "x".repeat(1.5 * MIB) }] })
      .catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.details).toContain("object size limit of 1572864 bytes");
    expect(await h.server.store.currentRevision()).toBe(before);
    expect((await h.client.getNode("big")).metadata?.resourceVersion).toBe(node.metadata?.resourceVersion);
  });

  it("caps nodes below a smaller --max-message-size, so that every answer carrying one fits", async () => {
    h = await startHarness({ maxMessageBytes: 256 * 1024 });
    const err = (await h.client.register(nodeOfSize("n", 250 * 1024)).catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.details).toContain(`object size limit of ${256 * 1024 - 16 * 1024} bytes`);
    const ok = await h.client.register(nodeOfSize("n", 256 * 1024 - 20 * 1024));
    expect(ok.node?.metadata?.name).toBe("n");
  });

  it("answers a node stored before the limit, too large for a message, as a stand-in: get, list, watch and delete stay healthy", async () => {
    h = await startHarness({ maxMessageBytes: 1 * MIB });
    const client = h.client;
    await client.register(agentNode("a-small"));
    const start = await client.listNodes({});
    const abort = new AbortController();
    const watch = client.watch({ resourceVersion: start.resourceVersion }, { signal: abort.signal })[Symbol.asyncIterator]();

    // As an earlier version (or a larger --max-message-size) could have stored it.
    const legacy = fullNode(Node.fromPartial(nodeOfSize("b-legacy", 1.2 * MIB)));
    legacy.metadata.uid = "legacy-uid";
    const put = await h.server.store.txn({ compare: [], ops: [{ type: "put", key: nodeKey("b-legacy"), value: encodeNode(legacy) }] });
    expect(put.succeeded).toBe(true);
    await client.register(agentNode("c-after"));

    const got = await client.getNode("b-legacy");
    expect(got.metadata).toMatchObject({ name: "b-legacy", uid: "legacy-uid" });
    expect(got.metadata?.annotations["nodeplane.io/oversized"]).toMatch(/^the stored node is \d+ bytes, more than an answer may carry/);
    expect(got.status).toBeUndefined();

    expect((await client.listNodes({})).nodes.map((n) => n.metadata?.name)).toEqual(["a-small", "b-legacy", "c-after"]);
    expect((await client.listAllNodes({ limit: 1 })).nodes.map((n) => n.metadata?.name)).toEqual(["a-small", "b-legacy", "c-after"]);

    // A watch passes it (as a stand-in) and goes on to the next event.
    const seen = [(await watch.next()).value as WatchEvent, (await watch.next()).value as WatchEvent];
    expect(seen.map((e) => [e.type, e.node.metadata?.name])).toEqual([["ADDED", "b-legacy"], ["ADDED", "c-after"]]);
    expect(seen[0]!.node.metadata?.annotations["nodeplane.io/oversized"]).toBeDefined();
    abort.abort();

    const initial = client.watch({ sendInitialEvents: true })[Symbol.asyncIterator]();
    const names: string[] = [];
    for (let ev = (await initial.next()).value as WatchEvent; ev.type !== "BOOKMARK"; ev = (await initial.next()).value as WatchEvent) {
      names.push(ev.node.metadata?.name ?? "");
    }
    expect(names).toEqual(["a-small", "b-legacy", "c-after"]);
    await initial.return?.(undefined);

    expect((await client.deleteNode("b-legacy")).metadata?.uid).toBe("legacy-uid");
    await expect(client.getNode("b-legacy")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("ends a page early when the next node would not fit in the message; an unpaged list that would not fit is refused", async () => {
    h = await startHarness({ maxMessageBytes: 256 * 1024 });
    for (let i = 0; i < 30; i++) await h.client.register(nodeOfSize(`n-${String(i).padStart(2, "0")}`, 20 * 1024));
    const first = await h.client.listNodes({ limit: 500 });
    expect(first.nodes.length).toBeGreaterThan(1);
    expect(first.nodes.length).toBeLessThan(30);
    expect(first.continueToken).not.toBe("");
    const all = await h.client.listAllNodes({ limit: 500 });
    expect(all.nodes.map((n) => n.metadata?.name)).toEqual(Array.from({ length: 30 }, (_, i) => `n-${String(i).padStart(2, "0")}`));
    const err = (await h.client.listNodes({ limit: 0 }).catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err.details).toMatch(/^ListNodes without a limit would answer 30 objects in about \d+ bytes, more than the largest message of 262144 bytes/);
    // Leases are small: all 30 fit unpaged.
    expect((await h.client.listLeases()).length).toBe(30);
  });

  it("refuses to start with a --max-message-size too small for a node", async () => {
    // Refused before anything is opened: the data dir is never created.
    const dataDir = join(tmpdir(), `nodeplane-never-created-${process.pid}`);
    const start = NodeplaneServer.start({ listen: "127.0.0.1:0", httpListen: null, dataDir, logger: createLogger("silent"), maxMessageBytes: 32 * 1024 });
    await expect(start).rejects.toThrow(/--max-message-size 32768 is too small: at least 65536 bytes/);
    expect(existsSync(dataDir)).toBe(false);
  });
});
