/**
 * The Watch handler's backpressure path, against a real server: a client that stops reading
 * fills its stream; the handler stops writing until the stream drains, then goes on from where
 * it stopped (every event once, in order); a client that leaves meanwhile ends the watch, and so
 * does a watcher whose queue overflows meanwhile (RESOURCE_EXHAUSTED) though the stream never drains.
 */
import { credentials, type ClientReadableStream } from "@grpc/grpc-js";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, describe, expect, it, vi } from "vitest";
import { NodeServiceClient, type WatchResponse } from "../../src/gen/nodeplane/v1/service.js";
import { type Harness, agentNode, startHarness } from "../support/server.js";

let h: Harness | undefined;
let raw: InstanceType<typeof NodeServiceClient> | undefined;
afterEach(async () => {
  raw?.close();
  raw = undefined;
  await h?.close();
  h = undefined;
});

/** A value of the server's /metrics, summed over its series. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${h!.server.httpPort}/metrics`)).text();
  const family = parsePrometheusTextFormat(text).find((f) => f.name === name);
  const samples = (family?.metrics ?? []) as { value?: string; labels?: Record<string, string> }[];
  return samples.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)).reduce((n, m) => n + Number(m.value ?? 0), 0);
}

/** `count` changes of one node, each ~16 KiB (an annotation), so that a few hundred overfill any stream window. */
async function bigChanges(name: string, count: number): Promise<number[]> {
  const revisions: number[] = [];
  const pad = "p".repeat(16 * 1024);
  for (let i = 0; i < count; i++) {
    const node = await h!.client.updateNode({ metadata: { name, annotations: { pad: `${i}-${pad}` } } });
    revisions.push(Number(node.metadata?.resourceVersion));
  }
  return revisions;
}

/**
 * A server (metrics on), node `name` registered, and a raw grpc-js Watch of it from its
 * registration on, established (response headers in) and paused: its client reads nothing.
 */
async function pausedWatch(name: string, limits: { watchQueueLimit?: number } = {}): Promise<{ call: ClientReadableStream<WatchResponse>; received: number[] }> {
  h = await startHarness({ httpListen: "127.0.0.1:0", ...limits });
  const { node } = await h.client.register(agentNode(name));
  raw = new NodeServiceClient(`127.0.0.1:${h.server.port}`, credentials.createInsecure());
  const from = String(node?.metadata?.resourceVersion);
  const call = raw.watch({ resourceVersion: from, fieldSelector: `metadata.name=${name}`, labelSelector: "", sendInitialEvents: false, allowBookmarks: false });
  const received: number[] = [];
  call.on("data", (r: WatchResponse) => received.push(Number(r.node?.metadata?.resourceVersion)));
  call.on("error", () => {});
  await new Promise((resolve) => call.once("metadata", resolve));
  call.pause();
  return { call, received };
}

describe("Watch backpressure", () => {
  it("stops writing to a client that stopped reading, then sends the rest once it reads again", async () => {
    const { call, received } = await pausedWatch("bp-1");
    const revisions = await bigChanges("bp-1", 300); // ~4.8 MiB: more than the stream's windows hold
    const sentWhilePaused = await metric("nodeplane_watch_events_sent_total");
    expect(sentWhilePaused).toBeLessThan(300);
    const all = new Promise<void>((resolve) => call.on("data", () => received.length === 300 && resolve()));
    call.resume();
    await all;
    expect(received).toEqual(revisions);
    expect(await metric("nodeplane_watch_events_sent_total")).toBe(300);
  }, 60_000);

  it("ends the watch when the client leaves while the server waits for its stream to drain", async () => {
    const { call } = await pausedWatch("bp-2");
    await bigChanges("bp-2", 300);
    expect(await metric("nodeplane_watch_events_sent_total")).toBeLessThan(300);
    expect(await metric("nodeplane_watchers")).toBe(1);
    call.cancel();
    await vi.waitFor(async () => expect(await metric("nodeplane_watchers")).toBe(0), { timeout: 10_000, interval: 20 });
    expect(await metric("nodeplane_grpc_server_handled_total", { method: "Watch", code: "CANCELLED" })).toBe(1);
  }, 60_000);

  it("ends the watch RESOURCE_EXHAUSTED when its queue overflows while the stream is full and the client neither reads nor leaves", async () => {
    const { call } = await pausedWatch("bp-3", { watchQueueLimit: 8 });
    // More than the stream's windows and buffers hold, plus the queue limit of 8: the watcher
    // fails while the handler waits for a 'drain' that never comes; only the watcher's end can
    // tell the handler (Watcher.notifyEnd).
    await bigChanges("bp-3", 300);
    await vi.waitFor(async () => expect(await metric("nodeplane_watchers")).toBe(0), { timeout: 10_000, interval: 20 });
    expect(await metric("nodeplane_watch_slow_watchers_total")).toBe(1);
    expect(await metric("nodeplane_grpc_server_handled_total", { method: "Watch", code: "RESOURCE_EXHAUSTED" })).toBe(1);
    call.cancel();
  }, 60_000);
});

