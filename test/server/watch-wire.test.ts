/**
 * The Watch stream's bytes, read with a raw grpc-js client: each message is the WatchResponse
 * a per-watcher encode of { type, node, resource_version } would have written, whether the
 * event's bytes were encoded for this watcher or shared with others (src/server/watch-wire.ts),
 * byte for byte, whether the server encoded the node or copied its stored bytes.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { ObjectMeta } from "../../src/gen/nodeplane/v1/meta.js";
import type { Node } from "../../src/gen/nodeplane/v1/node.js";
import { NodeServiceService, WatchRequest, WatchResponse } from "../../src/gen/nodeplane/v1/service.js";
import { type Harness, agentNode, startHarness } from "../support/server.js";

let h: Harness | undefined;
let raw: grpc.Client | undefined;
afterEach(async () => {
  raw?.close();
  raw = undefined;
  await h?.close();
  h = undefined;
});

/** A watch whose messages are kept as the bytes that came off the wire; `headers` resolves when its response headers come. */
function rawWatch(req: Partial<WatchRequest>): { next(): Promise<Buffer>; close(): void; headers: Promise<void> } {
  raw ??= new grpc.Client(`127.0.0.1:${h!.server.port}`, grpc.credentials.createInsecure());
  const call = raw.makeServerStreamRequest(
    NodeServiceService.watch.path,
    NodeServiceService.watch.requestSerialize,
    (b: Buffer) => b,
    WatchRequest.fromPartial(req),
  );
  const got: Buffer[] = [];
  const waiting: Array<(b: Buffer) => void> = [];
  const headers = new Promise<void>((resolve) => call.on("metadata", () => resolve()));
  call.on("data", (b: Buffer) => {
    const w = waiting.shift();
    if (w) w(b);
    else got.push(b);
  });
  call.on("error", () => {});
  return {
    next: () => {
      const b = got.shift();
      return b ? Promise.resolve(b) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () => call.cancel(),
    headers,
  };
}

/** What the handler wrote before events were encoded once: one encode per watcher per event. */
const perWatcherEncoding = (type: string, node: Node, resourceVersion: string): WatchResponse =>
  WatchResponse.decode(WatchResponse.encode({ type, node, resourceVersion }).finish());

const rvOf = (n: Node): string => n.metadata!.resourceVersion;

describe("Watch wire format", () => {
  it("decodes to the same WatchResponse for ADDED, MODIFIED, DELETED and BOOKMARK", async () => {
    h = await startHarness();
    const { client } = h;
    const start = (await client.listNodes()).resourceVersion;
    const watches = [rawWatch({ resourceVersion: start, allowBookmarks: true }), rawWatch({ resourceVersion: start })];
    const added = (await client.register(agentNode("wire-1"))).node!;
    const modified = await client.updateStatus("wire-1", { capacity: { cpu: "8" } });
    const asItWas = await client.getNode("wire-1");
    const deleted = await client.deleteNode("wire-1");
    const deletedAt = (await client.listNodes()).resourceVersion;
    expect(Number(deletedAt)).toBeGreaterThan(Number(rvOf(deleted)));
    const expected = [
      perWatcherEncoding("ADDED", added, rvOf(added)),
      perWatcherEncoding("MODIFIED", modified, rvOf(modified)),
      perWatcherEncoding("DELETED", { ...asItWas, metadata: { ...asItWas.metadata!, resourceVersion: deletedAt } }, deletedAt),
    ];
    for (const w of watches) {
      const got: WatchResponse[] = [];
      for (let i = 0; i < expected.length; i++) {
        const bytes = await w.next();
        expect(bytes).toEqual(Buffer.from(WatchResponse.encode(expected[i]!).finish()));
        got.push(WatchResponse.decode(bytes));
      }
      expect(got).toEqual(expected);
    }
    // The BOOKMARK ending the initial state carries only metadata.resource_version.
    const initial = rawWatch({ sendInitialEvents: true, fieldSelector: "metadata.name=none" });
    const bookmark = WatchResponse.decode(await initial.next());
    expect(bookmark).toEqual(perWatcherEncoding("BOOKMARK", { metadata: ObjectMeta.fromPartial({ resourceVersion: deletedAt }) }, deletedAt));
    for (const w of [...watches, initial]) w.close();
  });

  it("sends the response headers once the watch is established, before any event", async () => {
    h = await startHarness();
    const { client } = h;
    // A watch of one node that does not exist yet: no event to send, the headers all the same
    // (headers held back for a first event time this test out, at 5 s, rather than hang it).
    const quiet = rawWatch({ fieldSelector: "metadata.name=wire-quiet" });
    await quiet.headers;
    // The watch is established: a change made now is delivered.
    const added = (await client.register(agentNode("wire-quiet"))).node!;
    expect(WatchResponse.decode(await quiet.next())).toEqual(perWatcherEncoding("ADDED", added, rvOf(added)));
    quiet.close();
  }, 5000);

  it("sends ADDED to a watcher the node starts matching and MODIFIED to one it already matched, for the same change", async () => {
    h = await startHarness();
    const { client } = h;
    const before = (await client.register(agentNode("wire-2", { metadata: { labels: { env: "dev" } } }))).node!;
    const prod = rawWatch({ resourceVersion: rvOf(before), labelSelector: "env=prod" });
    const all = rawWatch({ resourceVersion: rvOf(before) });
    const pinned = rawWatch({ resourceVersion: rvOf(before), fieldSelector: "metadata.name=wire-2" });
    const current = await client.getNode("wire-2");
    const moved = await client.updateNode({ ...current, metadata: { ...current.metadata!, labels: { ...current.metadata!.labels, env: "prod" } } });
    const prodBytes = await prod.next();
    const allBytes = await all.next();
    const pinnedBytes = await pinned.next();
    expect(WatchResponse.decode(prodBytes)).toEqual(perWatcherEncoding("ADDED", moved, rvOf(moved)));
    expect(prodBytes).toEqual(Buffer.from(WatchResponse.encode(perWatcherEncoding("ADDED", moved, rvOf(moved))).finish()));
    expect(WatchResponse.decode(allBytes)).toEqual(perWatcherEncoding("MODIFIED", moved, rvOf(moved)));
    expect(pinnedBytes.equals(allBytes)).toBe(true);
    for (const w of [prod, all, pinned]) w.close();
  });
});
