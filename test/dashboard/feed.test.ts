/**
 * FleetFeed over a real SQLite store, written through the real registry and event recorder:
 * a snapshot then every change after it, once; a feed started later over the same store (a
 * restarted server) resuming an old revision from the store's history; and the cases that
 * must relist instead.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FleetFeed } from "../../src/dashboard/feed.js";
import type { Frame, FrameBody } from "../../src/dashboard/frames.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { EventRecorder } from "../../src/registry/events.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { agentNode } from "../support/server.js";

let dir: string;
let store: SqliteStore;
let registry: NodeRegistry;
let events: EventRecorder;
const feeds: FleetFeed[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-feed-"));
  store = await SqliteStore.open({ dir });
  registry = new NodeRegistry({ store });
  events = new EventRecorder({ store, source: "test" });
});
afterEach(async () => {
  for (const f of feeds.splice(0)) f.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function feed(opts: { ringBytes?: number } = {}): FleetFeed {
  const f = new FleetFeed({ store, frameMs: 5, ...opts });
  feeds.push(f);
  return f;
}

const rev = (n: Node): number => Number(n.metadata!.resourceVersion);
const register = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
  rev((await registry.register(Node.fromPartial(agentNode(name, { metadata: { name, labels } })))).node);

/** Frames from `seq` on, as they come, until one reaches `until`. */
function framesFrom(f: FleetFeed, seq: number, until: number): Promise<Frame[]> {
  return new Promise((resolve) => {
    const got: Frame[] = [];
    let next = seq;
    const drain = (): boolean => {
      for (let fr = f.frameAt(next); fr; fr = f.frameAt(++next)) got.push(fr);
      if ((got.at(-1)?.to ?? 0) < until) return false;
      stop();
      resolve(got);
      return true;
    };
    const stop = f.listen({ frame: () => void drain(), reset: () => resolve(got) });
    drain();
  });
}

/** Every row revision a list of frames carries, in order. */
const revsOf = (frames: Frame[]): number[] =>
  frames.flatMap((f) => [...f.body.nodes, ...f.body.leases, ...f.body.gone, ...f.body.events].map((r) => r.rev).sort((a, b) => a - b));
/** Every change a list of frames carries, as kind/name@revision (a node and its Lease can share a revision). */
const changesOf = (frames: Frame[]): string[] =>
  frames.flatMap((f) => [
    ...f.body.nodes.map((r) => `node/${r.name}@${r.rev}`),
    ...f.body.leases.map((r) => `lease/${r.name}@${r.rev}`),
    ...f.body.gone.map((r) => `gone-${r.kind}/${r.name}@${r.rev}`),
    ...f.body.events.map((r) => `event/${r.key}@${r.rev}`),
  ]);

describe("FleetFeed", () => {
  it("answers a snapshot, then every change after it once, in revision order, in frames whose ids increase", async () => {
    await register("a", { "topology.kubernetes.io/zone": "z1" });
    await register("b");
    const f = feed();
    await f.start();
    const snap = f.snapshot();
    expect(snap.nodes.map((n) => n.name).sort()).toEqual(["a", "b"]);
    expect(snap.nodes.find((n) => n.name === "a")!.zone).toBe("z1");
    expect(snap.leases.map((l) => l.name).sort()).toEqual(["a", "b"]);

    const from = await f.resume(snap.rev);
    const written: number[] = [];
    written.push(Number((await registry.renewLease("a", "", 0)).metadata!.resourceVersion));
    const cordoned = await registry.getNode("b");
    written.push(rev(await registry.updateNode({ ...cordoned, spec: { ...cordoned.spec!, unschedulable: true } })));
    written.push(Number((await events.record({ nodeName: "a", type: "Warning", reason: "NodeNotReady", message: "<b>x</b>" })).metadata!.resourceVersion));
    await registry.deleteNode("a", "");
    written.push(await store.currentRevision());
    const frames = await framesFrom(f, (from as { seq: number }).seq, Math.max(...written));

    const ids = frames.map((fr) => fr.to);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);
    expect(revsOf(frames).every((r) => r > snap.rev)).toBe(true);
    const changes = changesOf(frames);
    expect(new Set(changes).size).toBe(changes.length);
    const all: FrameBody = { nodes: [], leases: [], gone: [], events: [] };
    for (const fr of frames) for (const k of ["nodes", "leases", "gone", "events"] as const) (all[k] as unknown[]).push(...fr.body[k]);
    expect(all.nodes.find((n) => n.name === "b")?.cordoned).toBe(true);
    expect(all.events.map((e) => [e.node, e.reason, e.message])).toEqual([["a", "NodeNotReady", "<b>x</b>"]]);
    // Deleting a node deletes its Lease in the same revision; both are told.
    expect(all.gone.map((g) => `${g.kind}/${g.name}`).sort()).toEqual(["lease/a", "node/a"]);
    expect(f.snapshot().nodes.map((n) => n.name)).toEqual(["b"]);
  });

  it("started later over the same store (a restarted server), resumes an old revision from the store's history", async () => {
    await register("a");
    const first = feed();
    await first.start();
    const seen = first.snapshot().rev;
    first.stop();
    // Changes the browser has not seen: made while "the server was down".
    const missed = [await register("b"), rev(await registry.updateStatus("a", agentNode("a").status as Node["status"], ""))];
    const second = feed();
    await second.start();
    const later = await register("c");

    const resume = await second.resume(seen);
    expect(resume).toHaveProperty("seq");
    const frames = await framesFrom(second, (resume as { seq: number }).seq, later);
    const revs = revsOf(frames);
    expect(Math.min(...revs)).toBeGreaterThan(seen);
    for (const r of [...missed, later]) expect(revs).toContain(r);
    const changes = changesOf(frames);
    expect(new Set(changes).size).toBe(changes.length);
    const names = frames.flatMap((fr) => fr.body.nodes.map((n) => n.name));
    expect(names).toEqual(["b", "a", "c"]);
  });

  it("answers relist for a revision compacted away, one newer than the store's, or history over its budget", async () => {
    await register("a");
    const old = (await store.currentRevision()) - 1;
    for (let i = 0; i < 5; i++) await register(`n${i}`);
    const head = await store.currentRevision();
    await store.compact(head - 1);
    const f = feed();
    await f.start();
    expect(await f.resume(old)).toEqual({ relist: expect.stringMatching(/compacted/) });
    expect(await f.resume(head + 100)).toEqual({ relist: expect.stringMatching(/newer than the server's/) });
    expect(await f.resume(head)).toEqual({ seq: f.nextSeq });

    const small = feed({ ringBytes: 200 });
    const before = await store.currentRevision();
    for (let i = 0; i < 5; i++) await register(`m${i}`, { big: "x".repeat(60) });
    await small.start();
    expect(await small.resume(before)).toEqual({ relist: expect.stringMatching(/exceed what the server keeps/) });
  });
});
