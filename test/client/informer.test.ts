/** The SDK Informer against a real server through the real NodeClient: waits on promises, never on sleeps. */
import { afterEach, describe, expect, it } from "vitest";
import { NodeClient } from "../../src/client/client.js";
import { CancelledError, InvalidArgumentError, OutOfRangeError, UnavailableError } from "../../src/client/errors.js";
import { Backoff } from "../../src/backoff.js";
import { Informer, type InformerOptions } from "../../src/client/informer.js";
import type { Node } from "../../src/gen/nodeplane/v1/node.js";
import { type Harness, agentNode, startHarness } from "../support/server.js";

const nameOf = (n: Node): string => n.metadata?.name ?? "";
const rvOf = (n: Node | undefined): string => n?.metadata?.resourceVersion ?? "";
/** The comparable content of a cache or a list: [name, resourceVersion], by name. */
const state = (nodes: Node[]): [string, string][] => nodes.map((n): [string, string] => [nameOf(n), rvOf(n)]).sort(([a], [b]) => (a < b ? -1 : 1));

interface Call {
  op: "add" | "update" | "delete";
  name: string;
  rv: string;
}

/** Handlers that record every call, with the revision of the object handed over. */
function recorder(): { calls: Call[]; ops: () => string[]; handlers: Pick<InformerOptions, "onAdd" | "onUpdate" | "onDelete"> } {
  const calls: Call[] = [];
  return {
    calls,
    ops: () => calls.map((c) => `${c.op} ${c.name}`),
    handlers: {
      onAdd: (n) => calls.push({ op: "add", name: nameOf(n), rv: rvOf(n) }),
      onUpdate: (old, n) => {
        expect(nameOf(old)).toBe(nameOf(n));
        calls.push({ op: "update", name: nameOf(n), rv: rvOf(n) });
      },
      onDelete: (n) => calls.push({ op: "delete", name: nameOf(n), rv: rvOf(n) }),
    },
  };
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const FAST_BACKOFF = { initialMs: 5, maxMs: 50 };

let h: Harness | undefined;
const informers: Informer[] = [];
const clients: NodeClient[] = [];

afterEach(async () => {
  await Promise.all(informers.splice(0).map((i) => i.stop()));
  for (const c of clients.splice(0)) c.close();
  await h?.close();
  h = undefined;
});

/** A client of its own for an informer (it outlives the harness's client across restarts). */
function clientFor(port: number): NodeClient {
  // grpc-js waits up to 2 min between reconnects by default; tests restart servers in milliseconds.
  const c = new NodeClient(`127.0.0.1:${port}`, {
    channelOptions: { "grpc.initial_reconnect_backoff_ms": 20, "grpc.max_reconnect_backoff_ms": 100 },
  });
  clients.push(c);
  return c;
}

function informer(opts: Partial<InformerOptions> & { port?: number } = {}): Informer {
  const { port, ...rest } = opts;
  const inf = new Informer({ client: clientFor(port ?? h!.server.port), backoff: FAST_BACKOFF, ...rest });
  informers.push(inf);
  return inf;
}

async function setLabels(client: NodeClient, name: string, labels: Record<string, string>): Promise<Node> {
  const n = await client.getNode(name);
  return client.updateNode({ ...n, metadata: { ...n.metadata, labels: { ...n.metadata?.labels, ...labels } } });
}

describe("Informer", () => {
  it.each([
    ["the default watch queue", {}],
    ["a watch queue of 4, so the server cuts the watch off and it resumes", { watchQueueLimit: 4 }],
  ])("after a burst of 1,000 concurrent changes with %s, the cache equals the server's state", async (_, serve) => {
    h = await startHarness({ ...serve, bookmarkIntervalMs: 50 });
    const { client } = h;
    for (let i = 0; i < 20; i++) await client.createNode(agentNode(`pre-${i}`, { metadata: { labels: { tier: i % 2 ? "gold" : "silver" } } }));
    const rec = recorder();
    const all = informer({ ...rec.handlers });
    const gold = informer({ labelSelector: "tier=gold" });
    all.start();
    gold.start();
    await Promise.all([all.synced, gold.synced]);
    expect(rec.calls.length).toBe(20);

    // 250 nodes, concurrently, each: create, update status, relabel, then delete or update again.
    const acked: number[] = [];
    let changes = 0;
    const note = (n: Node): void => {
      changes++;
      acked.push(Number(rvOf(n)));
    };
    const chain = async (i: number): Promise<void> => {
      const name = `b-${i}`;
      const tier = i % 3 ? "silver" : "gold";
      note(await client.createNode(agentNode(name, { metadata: { labels: { tier } } })));
      note(await client.updateStatus(name, { capacity: { cpu: String(i + 1) } }));
      // Always a real change (an update that changes nothing makes no revision): into, out of, or past gold.
      note(await setLabels(client, name, { tier: i % 4 === 0 ? "bronze" : tier === "gold" ? "silver" : "gold" }));
      if (i % 2 === 0) {
        await client.deleteNode(name);
        changes++;
      } else {
        note(await client.updateStatus(name, { capacity: { cpu: String(i + 1000) } }));
      }
    };
    await Promise.all(Array.from({ length: 250 }, (_, i) => chain(i)));
    expect(changes).toBe(1000);

    const truth = await client.listAllNodes({ limit: 100 });
    const goldTruth = await client.listAllNodes({ labelSelector: "tier=gold", limit: 100 });
    expect(Number(truth.resourceVersion)).toBeGreaterThanOrEqual(Math.max(...acked));
    // `gold` sees no event for the last changes when they are not gold: the server's bookmarks carry it there.
    await Promise.all([all.waitFor(truth.resourceVersion), gold.waitFor(goldTruth.resourceVersion)]);
    expect(state(all.list())).toEqual(state(truth.nodes));
    expect(state(gold.list())).toEqual(state(goldTruth.nodes));
    expect(all.list().length).toBe(20 + 125);

    // One handler call per change, in revision order, none twice, none missing.
    const live = rec.calls.slice(20);
    expect(live.length).toBe(1000);
    const revs = live.map((c) => Number(c.rv));
    for (let i = 1; i < revs.length; i++) expect(revs[i]).toBeGreaterThan(revs[i - 1]!);
    expect(revs.filter((r) => acked.includes(r)).length).toBe(acked.length);
  });

  it("survives a server restart on the same address and applies the changes made after it", async () => {
    h = await startHarness();
    const port = h.server.port;
    for (const name of ["r-0", "r-1", "r-2"]) await h.client.createNode(agentNode(name));
    const rec = recorder();
    const errors: Error[] = [];
    const inf = informer({ ...rec.handlers, onError: (e) => errors.push(e) });
    inf.start();
    await inf.synced;
    const before = await h.client.updateStatus("r-0", { capacity: { cpu: "1" } });
    await inf.waitFor(rvOf(before));

    await h.restart({ listen: `127.0.0.1:${port}` });
    await h.client.updateStatus("r-0", { capacity: { cpu: "2" } });
    await h.client.deleteNode("r-1");
    await h.client.createNode(agentNode("r-new"));
    const truth = await h.client.listAllNodes();
    await inf.waitFor(truth.resourceVersion);

    expect(state(inf.list())).toEqual(state(truth.nodes));
    expect(rec.ops()).toEqual(["add r-0", "add r-1", "add r-2", "update r-0", "update r-0", "delete r-1", "add r-new"]);
    expect(errors.some((e) => e instanceof UnavailableError)).toBe(true);
    // Resumed from its revision: it never had to list again.
    expect(errors.some((e) => e instanceof OutOfRangeError)).toBe(false);
  });

  it("relists when its revision was compacted away and reports exactly what changed meanwhile", async () => {
    h = await startHarness();
    const port = h.server.port;
    for (const name of ["c-delete", "c-keep", "c-replace", "c-update"]) await h.client.createNode(agentNode(name));
    const rec = recorder();
    const outOfRange = deferred();
    const inf = informer({ ...rec.handlers, onError: (e) => e instanceof OutOfRangeError && outOfRange.resolve() });
    inf.start();
    await inf.synced;
    const oldUid = inf.get("c-replace")?.metadata?.uid;
    rec.calls.length = 0;

    // Move the server to another port: the informer keeps retrying the old one, and misses all this.
    await h.restart();
    await h.client.updateStatus("c-update", { capacity: { cpu: "7" } });
    await h.client.deleteNode("c-delete");
    await h.client.deleteNode("c-replace");
    await h.client.createNode(agentNode("c-replace"));
    await h.client.createNode(agentNode("c-new"));
    await h.client.createNode(agentNode("c-temp"));
    await h.client.deleteNode("c-temp");
    const head = await h.server.store.currentRevision();
    await h.server.store.compact(head);
    const truth = await h.client.listAllNodes();

    // Back on the informer's address: resuming answers OUT_OF_RANGE, so it lists again.
    await h.restart({ listen: `127.0.0.1:${port}` });
    await outOfRange.promise;
    await inf.waitFor(truth.resourceVersion);
    expect(rec.ops()).toEqual(["delete c-delete", "delete c-replace", "add c-new", "add c-replace", "update c-update"]);
    expect(rec.calls.find((c) => c.op === "delete" && c.name === "c-replace")?.rv).not.toBe(rvOf(inf.get("c-replace")));
    expect(inf.get("c-replace")?.metadata?.uid).not.toBe(oldUid);
    expect(state(inf.list())).toEqual(state(truth.nodes));
    expect(inf.resourceVersion).toBe(String(head));

    // And it watches again from the list's revision.
    rec.calls.length = 0;
    const kept = await h.client.updateStatus("c-keep", { capacity: { cpu: "3" } });
    await inf.waitFor(rvOf(kept));
    expect(rec.calls).toEqual([{ op: "update", name: "c-keep", rv: rvOf(kept) }]);
  });

  it("answers get and list(selector) from the cache with Kubernetes selector semantics", async () => {
    h = await startHarness();
    const { client } = h;
    await client.createNode(agentNode("l-a", { metadata: { labels: { env: "prod", zone: "a" } } }));
    await client.createNode(agentNode("l-b", { metadata: { labels: { env: "prod", zone: "b" } } }));
    await client.createNode(agentNode("l-c", { metadata: { labels: { env: "dev", zone: "a" } } }));
    await client.createNode(agentNode("l-d"));
    const all = informer();
    all.start();
    await all.synced;
    const names = (selector?: string): string[] => all.list(selector).map(nameOf);
    const cases: [string | undefined, string[]][] = [
      [undefined, ["l-a", "l-b", "l-c", "l-d"]],
      ["", ["l-a", "l-b", "l-c", "l-d"]],
      ["env=prod", ["l-a", "l-b"]],
      ["env==prod,zone=b", ["l-b"]],
      ["env!=prod", ["l-c", "l-d"]],
      ["env notin (prod)", ["l-c", "l-d"]],
      ["zone in (a, b),env", ["l-a", "l-b", "l-c"]],
      ["!zone", ["l-d"]],
      ["kubernetes.io/hostname=l-c", ["l-c"]],
    ];
    for (const [selector, want] of cases) expect(names(selector), `list(${JSON.stringify(selector)})`).toEqual(want);
    expect(() => all.list("a in (")).toThrow(InvalidArgumentError);
    expect(all.get("l-a")?.metadata?.labels?.zone).toBe("a");
    expect(all.get("missing")).toBeUndefined();

    // An informer with a selector holds only what matches; nodes entering and leaving it are adds and deletes.
    const rec = recorder();
    const prod = informer({ labelSelector: "env=prod", ...rec.handlers });
    const one = informer({ fieldSelector: "metadata.name=l-b" });
    prod.start();
    one.start();
    await Promise.all([prod.synced, one.synced]);
    expect(prod.list().map(nameOf)).toEqual(["l-a", "l-b"]);
    expect(one.list().map(nameOf)).toEqual(["l-b"]);
    await setLabels(client, "l-c", { env: "prod" });
    const left = await setLabels(client, "l-a", { env: "dev" });
    await prod.waitFor(rvOf(left));
    expect(rec.ops()).toEqual(["add l-a", "add l-b", "add l-c", "delete l-a"]);
    expect(prod.list().map(nameOf)).toEqual(["l-b", "l-c"]);
    expect(prod.get("l-a")).toBeUndefined();

    expect(() => informer({ labelSelector: "env in (" })).toThrow(InvalidArgumentError);
    expect(() => informer({ fieldSelector: "spec.unknown=1" })).toThrow(InvalidArgumentError);
  });

  describe("lifecycle", () => {
    it("resolves synced once the first list is in the cache; start() is idempotent", async () => {
      h = await startHarness();
      await h.client.createNode(agentNode("s-1"));
      await h.client.createNode(agentNode("s-2"));
      const rec = recorder();
      const inf = informer({ ...rec.handlers });
      expect([inf.hasSynced, inf.resourceVersion, inf.list()]).toEqual([false, "", []]);
      inf.start();
      inf.start();
      await inf.synced;
      expect(inf.hasSynced).toBe(true);
      expect(rec.ops()).toEqual(["add s-1", "add s-2"]);
      expect(inf.resourceVersion).toBe((await h.client.listNodes()).resourceVersion);
      const changed = await h.client.updateStatus("s-1", { capacity: { cpu: "9" } });
      await inf.waitFor(rvOf(changed));
      // One watch, not two: the change arrives once.
      expect(rec.ops()).toEqual(["add s-1", "add s-2", "update s-1"]);
    });

    it("stop() ends the watch at once: no handler runs after it, waiters and later calls reject", async () => {
      h = await startHarness();
      await h.client.createNode(agentNode("st-1"));
      const rec = recorder();
      const inf = informer({ ...rec.handlers });
      const witness = informer();
      inf.start();
      witness.start();
      await Promise.all([inf.synced, witness.synced]);
      const pending = inf.waitFor("999999");
      await inf.stop();
      await expect(pending).rejects.toBeInstanceOf(CancelledError);
      await expect(inf.waitFor("999999")).rejects.toBeInstanceOf(CancelledError);
      await expect(inf.synced).resolves.toBeUndefined();
      const changed = await h.client.updateStatus("st-1", { capacity: { cpu: "5" } });
      await witness.waitFor(rvOf(changed));
      expect(rec.ops()).toEqual(["add st-1"]);
      inf.start(); // does nothing once stopped
      await inf.stop();
    });

    it("stop() cuts a backoff wait short, and synced rejects when stopped before the first list", async () => {
      h = await startHarness();
      const port = h.server.port;
      await h.server.shutdown();
      const failed = deferred<Error>();
      const inf = informer({ port, backoff: { initialMs: 60_000, maxMs: 60_000 }, onError: (e) => failed.resolve(e) });
      inf.start();
      expect(await failed.promise).toBeInstanceOf(UnavailableError);
      // It now waits 30–60 s before retrying; stopping must not wait for that.
      const t0 = performance.now();
      await inf.stop();
      expect(performance.now() - t0).toBeLessThan(1000);
      await expect(inf.synced).rejects.toBeInstanceOf(CancelledError);
      expect(inf.hasSynced).toBe(false);
    });

    it("stops when its AbortSignal aborts, also when already aborted", async () => {
      h = await startHarness();
      await h.client.createNode(agentNode("ab-1"));
      const ac = new AbortController();
      const rec = recorder();
      const inf = informer({ signal: ac.signal, ...rec.handlers });
      inf.start();
      await inf.synced;
      ac.abort();
      await inf.stop(); // resolves once the loop it started has ended
      await expect(inf.waitFor("999999")).rejects.toBeInstanceOf(CancelledError);

      const early = informer({ signal: AbortSignal.abort() });
      early.start();
      await expect(early.synced).rejects.toBeInstanceOf(CancelledError);
      expect(rec.ops()).toEqual(["add ab-1"]);
    });
  });
});

describe("Backoff", () => {
  const seq = (b: Backoff, n: number, healthyMs = 0): number[] => Array.from({ length: n }, () => b.next(healthyMs));
  it.each([
    ["shortest jitter", 0, [800, 1600, 3200, 6400, 12_800, 15_000, 15_000]],
    ["longest jitter", 1, [1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]],
  ])("doubles from 800 ms and caps at 30 s (%s)", (_, r, want) => {
    expect(seq(new Backoff({}, () => r), 7)).toEqual(want);
  });

  it("starts over after a healthy run of resetAfterMs, not before", () => {
    const b = new Backoff({ initialMs: 10, maxMs: 1000, resetAfterMs: 500 }, () => 0);
    expect(seq(b, 3)).toEqual([10, 20, 40]);
    expect(b.next(499)).toBe(80);
    expect(b.next(500)).toBe(10);
    expect(b.next(0)).toBe(20);
  });
});
