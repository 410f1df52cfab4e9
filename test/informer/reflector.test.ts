/**
 * The Reflector, run once against the store lister-watcher (as the server's informers use it)
 * and once against the gRPC one (as the SDK's Informer uses it), both over a real server. The
 * sources are wrapped so a test can break a watch or hold a list; time is a FakeClock, so the
 * backoff waits are stepped, never slept.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { nodeSource } from "../../src/client/node-source.js";
import { UnavailableError } from "../../src/errors.js";
import type { Node } from "../../src/gen/nodeplane/v1/node.js";
import { Reflector } from "../../src/informer/reflector.js";
import type { ListerWatcher, ListPage, WatchBatch } from "../../src/informer/source.js";
import { storeSource } from "../../src/informer/store-source.js";
import { decodeNode } from "../../src/model/codec.js";
import { NODE_PREFIX } from "../../src/model/keys.js";
import type { KeyValue } from "../../src/store/store.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

let h: Harness | undefined;
let reflector: Reflector<Node> | undefined;
afterEach(async () => {
  await reflector?.stop();
  await h?.close();
  reflector = undefined;
  h = undefined;
});

/** A source whose watches the test can break, whose lists it can hold, and which counts calls. */
class Controlled<T> implements ListerWatcher<T> {
  watches = 0;
  errors: unknown[] = [];
  private breakWatch: ((err: Error) => void) | undefined;
  private watchWaiters: (() => void)[] = [];
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private heldList: (() => void) | undefined;

  constructor(private readonly inner: ListerWatcher<T>) {}

  async list(next: string | undefined, signal: AbortSignal): Promise<ListPage<T>> {
    if (this.gate) {
      this.heldList?.();
      await this.gate;
    }
    return this.inner.list(next, signal);
  }

  watch(afterRevision: number, sink: (batch: WatchBatch<T>) => void, signal: AbortSignal): Promise<void> {
    this.watches++;
    for (const w of this.watchWaiters.splice(0)) w();
    const inner = new AbortController();
    const linked = AbortSignal.any([signal, inner.signal]);
    return new Promise<void>((resolve, reject) => {
      this.breakWatch = (err) => {
        inner.abort();
        reject(err);
      };
      this.inner.watch(afterRevision, sink, linked).then(resolve, reject);
    });
  }

  classify(err: unknown): ReturnType<ListerWatcher<T>["classify"]> {
    this.errors.push(err);
    return this.inner.classify(err);
  }

  /** End the open watch with a failure the reflector retries (UNAVAILABLE). */
  break(): void {
    this.breakWatch?.(new UnavailableError("watch broken by the test"));
  }

  /** Resolves at the next watch() call. */
  nextWatch(): Promise<void> {
    return new Promise((resolve) => this.watchWaiters.push(resolve));
  }

  /** Hold every list from now on; resolves once one is held. */
  holdLists(): Promise<void> {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
    return new Promise((resolve) => (this.heldList = resolve));
  }

  releaseLists(): void {
    this.openGate?.();
    this.gate = undefined;
  }
}

interface Source {
  name: string;
  make(h: Harness): ListerWatcher<Node>;
  /** The error class the source fails a watch from a compacted revision with. */
  compacted: string;
}

const sources: Source[] = [
  {
    name: "the store lister-watcher",
    make: (harness) => storeSource({ store: harness.server.store, prefix: NODE_PREFIX, decode: decodeNode, pageSize: 2 }),
    compacted: "CompactedError",
  },
  {
    name: "the gRPC lister-watcher",
    make: (harness) => nodeSource({ client: harness.client, labelSelector: "", fieldSelector: "", pageSize: 2 }),
    compacted: "OutOfRangeError",
  },
];

/** What a subscriber saw, as one line per call. */
function record(r: Reflector<Node>): string[] {
  const seen: string[] = [];
  r.subscribe({
    onAdd: (name) => seen.push(`add ${name}`),
    onUpdate: (name) => seen.push(`update ${name}`),
    onDelete: (name) => seen.push(`delete ${name}`),
    onRelist: () => seen.push("relist"),
  });
  return seen;
}

describe("Reflector over the store lister-watcher, decoding", () => {
  it("hands each decode the object the new version replaces, from a watch and from a relist", async () => {
    h = await startHarness();
    await h.client.register(agentNode("a"));
    const previous: Array<string | undefined> = [];
    const decode = (kv: KeyValue, prev?: Node): Node => {
      previous.push(prev?.metadata?.resourceVersion);
      return decodeNode(kv);
    };
    const clock = new FakeClock();
    const src = new Controlled(storeSource({ store: h.server.store, prefix: NODE_PREFIX, decode }));
    reflector = new Reflector({ source: src, clock, backoff: { initialMs: 1000, maxMs: 1000 } });
    const watching = src.nextWatch();
    await reflector.start();
    await watching;
    const listed = reflector.get("a")!.metadata!.resourceVersion;
    expect(previous).toEqual([undefined]); // a first list has nothing to share

    const updated = await h.client.updateStatus("a", { conditions: [{ type: "Ready", status: "False" }] });
    expect(await reflector.waitFor(Number(updated.metadata!.resourceVersion))).toBe(true);
    expect(previous).toEqual([undefined, listed]);

    // A relist decodes a changed object with the one it held.
    src.break();
    const again = await h.client.updateStatus("a", { conditions: [{ type: "Ready", status: "True" }] });
    await h.server.store.compact(await h.server.store.currentRevision());
    const rewatched = src.nextWatch();
    clock.advance(1000);
    await rewatched;
    await src.nextWatch();
    expect(reflector.get("a")!.metadata!.resourceVersion).toBe(again.metadata!.resourceVersion);
    expect(previous).toEqual([undefined, listed, updated.metadata!.resourceVersion]);
  });
});

describe.each(sources)("Reflector over $name", (source) => {
  it("relists when its revision was compacted away, and reports exactly what changed meanwhile", async () => {
    h = await startHarness();
    for (const name of ["a", "b", "c"]) await h.client.register(agentNode(name));
    const clock = new FakeClock();
    const src = new Controlled(source.make(h));
    reflector = new Reflector({ source: src, clock, backoff: { initialMs: 1000, maxMs: 1000 } });
    const seen = record(reflector);
    const watching = src.nextWatch();
    await reflector.start();
    await watching;
    expect(seen).toEqual(["add a", "add b", "add c"]);
    const listed = reflector.changes;
    expect(listed).toBeGreaterThan(0);

    // The watch breaks; while the reflector waits to watch again, the world moves on and the
    // revision it stopped at is compacted away.
    src.break();
    await h.client.deleteNode("a");
    await h.client.updateStatus("b", { conditions: [{ type: "Ready", status: "False" }] });
    await h.client.register(agentNode("d"));
    const head = await h.server.store.currentRevision();
    await h.server.store.compact(head);

    const rewatched = src.nextWatch();
    clock.advance(1000); // the backoff wait is at most 1 s
    await rewatched; // it watches from its old revision: refused as compacted, so it lists again
    const relisted = src.nextWatch();
    await relisted;
    expect(src.errors.map((e) => (e as Error).constructor.name)).toEqual(["UnavailableError", source.compacted]);
    expect(seen.slice(3)).toEqual(["relist", "delete a", "update b", "add d"]);
    expect([...reflector.entries()].map(([name]) => name)).toEqual(["b", "c", "d"]);
    expect(reflector.changes).toBeGreaterThan(listed); // the relist changed the contents
    const snapshot = reflector.snapshot();
    expect(snapshot.names).toEqual(["b", "c", "d"]);
    expect(snapshot.objects).toEqual(snapshot.names.map((name) => reflector!.get(name)));
    expect(reflector.revision).toBe(head);
  });

  it("waits out its backoff on the clock before watching again, longer after each failure", async () => {
    h = await startHarness();
    await h.client.register(agentNode("a"));
    const clock = new FakeClock();
    const src = new Controlled(source.make(h));
    // Waits are random in [c/2, c], c doubling from 2 s: 1–2 s, then 2–4 s.
    reflector = new Reflector({ source: src, clock, backoff: { initialMs: 1000, maxMs: 60_000 } });
    const watching = src.nextWatch();
    await reflector.start();
    await watching;
    expect(src.watches).toBe(1);

    src.break();
    await settle();
    clock.advance(999);
    await settle();
    expect(src.watches).toBe(1);
    let next = src.nextWatch();
    clock.advance(1001);
    await next;
    expect(src.watches).toBe(2);

    src.break();
    await settle();
    clock.advance(1999);
    await settle();
    expect(src.watches).toBe(2);
    next = src.nextWatch();
    clock.advance(2001);
    await next;
    expect(src.watches).toBe(3);

    // Still following: a change made now arrives.
    const { node } = await h.client.register(agentNode("b"));
    expect(await reflector.waitFor(Number(node?.metadata?.resourceVersion))).toBe(true);
    expect(reflector.get("b")?.metadata?.name).toBe("b");
  });

  it("stops in the middle of a list: no handler runs, synced settles unsynced, waiters get false", async () => {
    h = await startHarness();
    for (const name of ["a", "b", "c"]) await h.client.register(agentNode(name));
    const src = new Controlled(source.make(h));
    reflector = new Reflector({ source: src, clock: new FakeClock() });
    const seen = record(reflector);
    const held = src.holdLists();
    const synced = reflector.start();
    await held;
    const waiter = reflector.waitFor(1);
    const stopping = reflector.stop();
    src.releaseLists();
    await stopping;
    await synced;
    expect(reflector.hasSynced).toBe(false);
    expect(await waiter).toBe(false);
    expect(seen).toEqual([]);
    expect(reflector.size).toBe(0);
    expect(src.watches).toBe(0);
  });
});

/** Let pending promise callbacks and I/O callbacks run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
