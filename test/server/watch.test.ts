/** Watch as API.md specifies it, against a real server through the SDK. */
import { afterEach, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/client/client.js";
import {
  InvalidArgumentError,
  OutOfRangeError,
  ResourceExhaustedError,
  UnavailableError,
} from "../../src/client/errors.js";
import type { Node } from "../../src/gen/nodeplane/v1/node.js";
import { type Harness, agentNode, collect, startHarness } from "../support/server.js";

const rv = (n: Node | undefined): number => Number(n?.metadata?.resourceVersion);
const revs = (events: WatchEvent[]): number[] => events.map((e) => Number(e.resourceVersion));

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("Watch", () => {
  it("delivers every change after the start revision in order, none twice, none missing", async () => {
    h = await startHarness();
    const { client } = h;
    await client.register(agentNode("w-0"));
    const start = (await client.listNodes()).resourceVersion;
    const acked: number[] = [];
    const writes = Array.from({ length: 60 }, (_, i) =>
      (i % 3 === 0
        ? client.register(agentNode(`w-${i}`)).then((r) => r.node)
        : client.updateStatus("w-0", { capacity: { cpu: String(i) } })
      ).then((n) => acked.push(rv(n))),
    );
    await Promise.all(writes);
    const last = Math.max(...acked);
    const events = await collect(client.watch({ resourceVersion: start }), (seen) => Number(seen.at(-1)!.resourceVersion) >= last);
    const got = revs(events);
    expect(got).toEqual([...got].sort((a, b) => a - b));
    expect(new Set(got).size).toBe(got.length);
    expect(got).toEqual([...acked].sort((a, b) => a - b));
  });

  it("sends initial events as of the start, then a BOOKMARK, then changes", async () => {
    h = await startHarness();
    const { client } = h;
    for (const name of ["i-1", "i-2", "i-3"]) await client.register(agentNode(name, { metadata: { labels: { env: "prod" } } }));
    await client.register(agentNode("i-dev", { metadata: { labels: { env: "dev" } } }));
    const it = client.watch({ labelSelector: "env=prod", sendInitialEvents: true })[Symbol.asyncIterator]();
    const initial: WatchEvent[] = [];
    for (let i = 0; i < 4; i++) initial.push((await it.next()).value as WatchEvent);
    expect(initial.slice(0, 3).map((e) => [e.type, e.node.metadata?.name]).sort()).toEqual([
      ["ADDED", "i-1"],
      ["ADDED", "i-2"],
      ["ADDED", "i-3"],
    ]);
    expect(initial[3]!.type).toBe("BOOKMARK");
    const bookmarkRev = Number(initial[3]!.resourceVersion);
    expect(bookmarkRev).toBeGreaterThanOrEqual(Math.max(...revs(initial.slice(0, 3))));
    const changed = await client.updateStatus("i-2", { capacity: { cpu: "1" } });
    const next = (await it.next()).value as WatchEvent;
    expect(next.type).toBe("MODIFIED");
    expect(next.resourceVersion).toBe(changed.metadata?.resourceVersion);
    await it.return?.(undefined);
  });

  it("with a start revision, sends the state as of that revision first", async () => {
    h = await startHarness();
    const { client } = h;
    await client.register(agentNode("r-1"));
    const at = (await client.listNodes()).resourceVersion;
    await client.register(agentNode("r-2"));
    const events = await collect(
      client.watch({ resourceVersion: at, sendInitialEvents: true }),
      (seen) => seen.some((e) => e.node.metadata?.name === "r-2"),
    );
    expect(events.map((e) => [e.type, e.node.metadata?.name ?? ""])).toEqual([
      ["ADDED", "r-1"],
      ["BOOKMARK", ""],
      ["ADDED", "r-2"],
    ]);
    expect(events[1]!.resourceVersion).toBe(at);
  });

  it("turns a node entering the selector into ADDED and leaving it into DELETED with its previous state", async () => {
    h = await startHarness();
    const { client } = h;
    const { node } = await client.register(agentNode("sel-1", { metadata: { labels: { env: "dev" } } }));
    const it = client.watch({ resourceVersion: String(rv(node)), labelSelector: "env=prod" })[Symbol.asyncIterator]();
    const setEnv = (env: string): Promise<Node> =>
      client.getNode("sel-1").then((n) => client.updateNode({ ...n, metadata: { ...n.metadata, labels: { ...n.metadata?.labels, env } } }));
    await setEnv("dev2");
    const entered = await setEnv("prod");
    const left = await setEnv("dev");
    const a = (await it.next()).value as WatchEvent;
    const d = (await it.next()).value as WatchEvent;
    expect([a.type, a.resourceVersion]).toEqual(["ADDED", entered.metadata?.resourceVersion]);
    expect([d.type, d.resourceVersion]).toEqual(["DELETED", left.metadata?.resourceVersion]);
    expect(d.node.metadata?.labels?.env).toBe("prod");
    expect(d.node.metadata?.resourceVersion).toBe(left.metadata?.resourceVersion);
    await client.deleteNode("sel-1");
    await setEnvOn(client, "sel-2", "prod");
    const added = (await it.next()).value as WatchEvent;
    expect(added.node.metadata?.name).toBe("sel-2");
    await it.return?.(undefined);
  });

  it("answers OUT_OF_RANGE naming the oldest revision when the start was compacted", async () => {
    h = await startHarness();
    const { client } = h;
    const { node } = await client.register(agentNode("c-1"));
    for (let i = 0; i < 5; i++) await client.updateStatus("c-1", { capacity: { cpu: String(i) } });
    const head = await h.server.store.currentRevision();
    await h.server.store.compact(head - 1);
    const err = await collect(client.watch({ resourceVersion: String(rv(node)) }), () => true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutOfRangeError);
    expect((err as Error).message).toContain(`oldest revision still available is ${head - 1}`);
    const ok = await collect(client.watch({ resourceVersion: String(head - 1) }), () => true);
    expect(ok[0]!.resourceVersion).toBe(String(head));
  });

  it("cuts off a slow watcher with RESOURCE_EXHAUSTED while a fast one keeps up, and the slow one resumes without a gap", async () => {
    h = await startHarness({ watchQueueLimit: 8 });
    const { client } = h;
    const { node } = await client.register(agentNode("slow-1"));
    const from = String(rv(node));
    const slow = client.watch({ resourceVersion: from, sendInitialEvents: true })[Symbol.asyncIterator]();
    expect(((await slow.next()).value as WatchEvent).type).toBe("ADDED");
    const N = 3000;
    const fast = collect(client.watch({ resourceVersion: from }), (seen) => seen.length === N);
    let last: Node | undefined;
    const pad = "x".repeat(400);
    for (let i = 0; i < N; i++) last = await client.updateStatus("slow-1", { capacity: { cpu: String(i), pad: "1" }, nodeInfo: { osImage: pad } });
    const fastEvents = await fast;
    expect(revs(fastEvents).at(-1)).toBe(rv(last));
    const slowEvents: WatchEvent[] = [];
    let err: unknown;
    try {
      for (;;) {
        const r = await slow.next();
        if (r.done) break;
        slowEvents.push(r.value);
      }
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toContain("watch queue limit of 8 events exceeded");
    const resumeFrom = slowEvents.at(-1)!.resourceVersion;
    const rest = await collect(client.watch({ resourceVersion: resumeFrom }), (seen) => seen.at(-1)!.resourceVersion === String(rv(last)));
    const all = [...revs(slowEvents.filter((e) => e.type === "MODIFIED")), ...revs(rest)];
    expect(all).toEqual(revs(fastEvents));
  }, 120_000); // 3,000 sequential writes: over 30 s on a loaded machine

  it("does not count initial events or replayed history against the live queue limit", async () => {
    h = await startHarness({ watchQueueLimit: 8 });
    const { client } = h;
    const start = (await client.listNodes()).resourceVersion;
    for (let i = 0; i < 20; i++) await client.register(agentNode(`q-${i}`));
    // 20 initial ADDED + BOOKMARK, then a live change: the queue limit of 8 does not apply to the first 21.
    const it = client.watch({ sendInitialEvents: true })[Symbol.asyncIterator]();
    const first = (await it.next()).value as WatchEvent;
    const changed = await client.updateStatus("q-3", { capacity: { cpu: "2" } });
    const rest = await collect({ [Symbol.asyncIterator]: () => it }, (seen) => seen.at(-1)?.resourceVersion === changed.metadata?.resourceVersion);
    expect([first, ...rest].map((e) => e.type)).toEqual([...Array(20).fill("ADDED"), "BOOKMARK", "MODIFIED"]);
    // Replaying 20 history events to a watcher with a queue of 8 pauses and resumes the replay.
    const replay = await collect(client.watch({ resourceVersion: start }), (seen) => seen.length === 21);
    expect(replay.map((e) => e.node.metadata?.name)).toEqual([...Array.from({ length: 20 }, (_, i) => `q-${i}`), "q-3"]);
  });

  it("names a resume point only once the initial state is complete", async () => {
    h = await startHarness({ watchQueueLimit: 2 });
    const { client } = h;
    await client.register(agentNode("rp-1"));
    const it = client.watch({ fieldSelector: "metadata.name=rp-1", sendInitialEvents: true })[Symbol.asyncIterator]();
    expect(((await it.next()).value as WatchEvent).type).toBe("ADDED");
    for (let i = 0; i < 400; i++) await client.updateStatus("rp-1", { capacity: { cpu: String(i) }, nodeInfo: { osImage: "y".repeat(400) } });
    const err = await collect({ [Symbol.asyncIterator]: () => it }, () => false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as Error).message).toMatch(/watch again from resource_version \d+ \(the last revision it received\)/);
  });

  it("sends periodic bookmarks carrying the current revision when asked", async () => {
    h = await startHarness({ bookmarkIntervalMs: 20 });
    const { client } = h;
    await client.register(agentNode("bm-1"));
    const { node: other } = await client.register(agentNode("bm-other"));
    const events = await collect(
      client.watch({ fieldSelector: "metadata.name=bm-1", allowBookmarks: true }),
      (seen) => seen.some((e) => e.type === "BOOKMARK" && Number(e.resourceVersion) >= rv(other)),
    );
    expect(events.every((e) => e.type === "BOOKMARK")).toBe(true);
  });

  it("resumes across a server restart from the last revision seen, losing nothing", async () => {
    h = await startHarness();
    const { node } = await h.client.register(agentNode("rs-1"));
    const seen = await collect(h.client.watch({ resourceVersion: String(rv(node) - 1) }), (s) => s.length === 1);
    const lastSeen = seen[0]!.resourceVersion;
    const before: number[] = [];
    for (let i = 0; i < 5; i++) before.push(rv(await h.client.updateStatus("rs-1", { capacity: { cpu: String(i) } })));
    await h.restart();
    const after: number[] = [];
    for (let i = 0; i < 3; i++) after.push(rv((await h.client.register(agentNode(`rs-new-${i}`))).node));
    const expected = [...before, ...after];
    const resumed = await collect(h.client.watch({ resourceVersion: lastSeen }), (s) => s.length === expected.length);
    expect(revs(resumed)).toEqual(expected);
  });

  it("ends open watches with UNAVAILABLE on shutdown", async () => {
    h = await startHarness();
    await h.client.register(agentNode("sd-1"));
    const it = h.client.watch({ sendInitialEvents: true })[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    const pending = it.next().catch((e: unknown) => e);
    await h.server.shutdown();
    expect(await pending).toBeInstanceOf(UnavailableError);
    await h.restart();
  });

  it("rejects a bad selector and a revision from the future with INVALID_ARGUMENT", async () => {
    h = await startHarness();
    const bad = await collect(h.client.watch({ labelSelector: "a in (b" }), () => true).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidArgumentError);
    expect((bad as Error).message).toContain("label_selector");
    const future = await collect(h.client.watch({ resourceVersion: "999999" }), () => true).catch((e: unknown) => e);
    expect(future).toBeInstanceOf(InvalidArgumentError);
    expect((future as Error).message).toContain("newer than");
  });
});

async function setEnvOn(client: Harness["client"], name: string, env: string): Promise<void> {
  await client.register(agentNode(name, { metadata: { labels: { env } } }));
}
