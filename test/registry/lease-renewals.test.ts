/**
 * Lease renewals made durable by checkpoint (src/registry/lease-renewals.ts): answered from
 * memory, shown at once by this server's reads, written once per Lease per checkpoint, held back
 * while checkpoints lag, rebased on other servers' writes. Two registries on one store stand in
 * for two servers (replicas on etcd). Nothing waits on time: the fake clock is stepped, and
 * checkpoints are awaited.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { NotFoundError, UnavailableError } from "../../src/errors.js";
import { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { decodeLease, encodeLease } from "../../src/model/codec.js";
import { LEASE_PREFIX, leaseKey } from "../../src/model/keys.js";
import { LeaseRenewals, phaseOf } from "../../src/registry/lease-renewals.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store, WatchEvent } from "../../src/store/store.js";
import { sharedInformers } from "../../src/informer/shared.js";
import { type HeldStore, heldStore } from "../support/held-store.js";

const clock = new FakeClock(Date.UTC(2026, 11, 6, 3, 0, 0));
let dir: string;
let sqlite: SqliteStore;
let held: HeldStore;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-lease-renewals-"));
  sqlite = await SqliteStore.open({ dir });
});
afterAll(async () => {
  await sqlite.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  held = heldStore(sqlite);
});

/** A registry (a server) over the held store, checkpointing every `ms` on the fake clock; renewals held back after `lagMs`. */
function server(ms = 1000, lagMs?: number): NodeRegistry {
  const r = new NodeRegistry({ store: held.store, clock, leaseCheckpointMs: ms, leaseLagLimitMs: lagMs });
  r.renewals.start();
  return r;
}

async function register(r: NodeRegistry, name: string): Promise<Lease> {
  return (await r.register(Node.fromPartial({ metadata: { name } }))).lease;
}

/** The Lease as the store holds it. */
async function stored(name: string): Promise<Lease> {
  return decodeLease((await sqlite.get(leaseKey(name)))!);
}

const renewMs = (l: Lease): number => l.spec!.renewTime!.getTime();

const withResourceVersion = (l: Lease, resourceVersion: string | undefined): Lease => ({ ...l, metadata: { ...l.metadata!, resourceVersion: resourceVersion ?? "" } });

/** `inner`, recording the key of every get. */
function countingGets(inner: Store): { store: Store; gets: string[] } {
  const gets: string[] = [];
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === "get") return (key: string) => (gets.push(key), target.get(key));
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store, gets };
}

/** A server (C = 1 s) whose first checkpoint, writing a renewal of `name`, has just started and is held. */
async function heldCheckpoint(name: string): Promise<{ a: NodeRegistry; release: (err?: Error) => void }> {
  const a = server(1000);
  await register(a, name);
  clock.advance(10);
  await a.renewLease(name, "", 0);
  const release = held.hold();
  clock.advance(990); // the checkpoint starts, and is held
  await held.waiting(1);
  return { a, release };
}
const leasePuts = (): string[][] => held.puts.filter((keys) => keys.every((k) => k.startsWith(LEASE_PREFIX)));
/** Whether `p` has settled by the time already-settled work has run (never waits for time). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol("pending");
  const out = await Promise.race([p.then(() => true, () => true), new Promise((resolve) => setImmediate(() => resolve(marker)))]);
  return out !== marker;
}

describe("Lease renewals made durable by checkpoint", () => {
  it("answers a renewal at once from memory, shows it to this server's reads at once, and writes it at the next checkpoint", async () => {
    const a = server();
    const b = server();
    const created = await register(a, "ck-1");
    const writes = held.puts.length;
    clock.advance(400);
    const renewed = await a.renewLease("ck-1", "", 0);
    expect(renewMs(renewed)).toBe(clock.now());
    expect(renewed.metadata!.resourceVersion).toBe(created.metadata!.resourceVersion);
    expect(held.puts.length).toBe(writes);
    // This server shows it; the store, watches and other servers do not yet.
    expect(renewMs(await a.getLease("ck-1"))).toBe(clock.now());
    expect(renewMs((await a.listLeases({ limit: 0, continueToken: "" })).leases.find((l) => l.metadata!.name === "ck-1")!)).toBe(clock.now());
    expect(renewMs(await stored("ck-1"))).toBe(renewMs(created));
    expect(renewMs(await b.getLease("ck-1"))).toBe(renewMs(created));
    // The checkpoint timer fires C after start; awaiting checkpoint() waits for it.
    clock.advance(600);
    await a.renewals.checkpoint();
    expect(leasePuts().slice(-1)).toEqual([[leaseKey("ck-1")]]);
    expect(renewMs(await stored("ck-1"))).toBe(renewMs(renewed));
    expect(renewMs(await b.getLease("ck-1"))).toBe(renewMs(renewed));
    await Promise.all([a.renewals.stop(), b.renewals.stop()]);
  });

  it("after a checkpoint wrote a renewal, answers carry the Lease as stored: the write's revision and renew time, the rest as it was", async () => {
    const a = server();
    const created = await register(a, "ck-as-stored");
    clock.advance(100);
    await a.renewLease("ck-as-stored", "", 0);
    clock.advance(900);
    await a.renewals.checkpoint();
    const written = await stored("ck-as-stored");
    expect(written.metadata!.resourceVersion).not.toBe(created.metadata!.resourceVersion);
    // The next renewal: the stored Lease renewed now (its revision the checkpoint's).
    clock.advance(5);
    const next = await a.renewLease("ck-as-stored", "", 0);
    expect(next).toEqual({ ...written, spec: { ...written.spec!, renewTime: new Date(clock.now()) } });
    await a.renewals.checkpoint();
    const again = await stored("ck-as-stored");
    // A durable write (another holder) starts from what the checkpoint wrote: its compare holds.
    clock.advance(5);
    const moved = await a.renewLease("ck-as-stored", "someone-else", 0);
    expect(moved.spec!.holderIdentity).toBe("someone-else");
    expect(await stored("ck-as-stored")).toEqual(moved);
    expect(Number(moved.metadata!.resourceVersion)).toBeGreaterThan(Number(again.metadata!.resourceVersion));
    await a.renewals.stop();
    // With C = 0 a renewal waits for its write and is answered with the Lease as written.
    const b = server(0);
    clock.advance(5);
    const durable = await b.renewLease("ck-as-stored", "", 0);
    expect(durable).toEqual(await stored("ck-as-stored"));
    expect(renewMs(durable)).toBe(clock.now());
    await b.renewals.stop();
  });

  it("writes each renewed Lease once per checkpoint, with its latest renew time, in transactions of at most 128 Leases", async () => {
    const a = server();
    const names = Array.from({ length: 300 }, (_, i) => `ck-many-${i}`);
    for (const n of names) await register(a, n);
    const before = held.puts.length;
    const revision = await sqlite.currentRevision();
    for (let round = 0; round < 3; round++) {
      clock.advance(1);
      await Promise.all(names.map((n) => a.renewLease(n, "", 0)));
    }
    await a.renewals.checkpoint();
    expect(held.puts.slice(before).map((keys) => keys.length)).toEqual([128, 128, 44]);
    expect(new Set(held.puts.slice(before).flat()).size).toBe(300);
    expect(await sqlite.currentRevision()).toBe(revision + 3);
    for (const n of [names[0]!, names[299]!]) expect(renewMs(await stored(n))).toBe(clock.now());
    await a.renewals.stop();
  });

  it("a watch of the Leases sees a renewal when the checkpoint that writes it commits, not before", async () => {
    const a = server();
    await register(a, "ck-watch");
    const from = await sqlite.currentRevision();
    const events: WatchEvent[] = [];
    let seen!: () => void;
    const delivered = new Promise<void>((resolve) => (seen = resolve));
    const w = sqlite.watch(LEASE_PREFIX, from, {
      onEvents: (evs) => {
        events.push(...evs);
        seen();
      },
      onProgress: () => {},
      onError: () => {},
    });
    clock.advance(5);
    const renewed = await a.renewLease("ck-watch", "", 0);
    await a.renewals.checkpoint(); // nothing was due before: this is the checkpoint that writes it
    // The watch may still be catching up from `from` when the commit lands (its first read is in
    // a turn of its own): then the event comes from history, after the checkpoint resolved.
    await delivered;
    expect(events.map((e) => [e.kv.key, renewMs(decodeLease(e.kv))])).toEqual([[leaseKey("ck-watch"), renewMs(renewed)]]);
    w.cancel();
    await a.renewals.stop();
  });

  it("one hot Lease: renewals are answered at once and in order, and cost one write per checkpoint", async () => {
    const a = server();
    await register(a, "ck-hot");
    const before = leasePuts().length;
    const order: number[] = [];
    const answers = Array.from({ length: 256 }, (_, i) => {
      clock.advance(1);
      return a.renewLease("ck-hot", "", 0).then((l) => {
        order.push(i);
        return renewMs(l);
      });
    });
    const times = await Promise.all(answers);
    expect(order).toEqual([...order].sort((x, y) => x - y));
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(leasePuts().length).toBe(before);
    await a.renewals.checkpoint();
    expect(leasePuts().slice(before)).toEqual([[leaseKey("ck-hot")]]);
    expect(renewMs(await stored("ck-hot"))).toBe(times.at(-1));
    await a.renewals.stop();
  });

  it("with C = 0 a renewal is answered once written, and renewals of one Lease made meanwhile ride along in one write, answered in order", async () => {
    const a = server(0);
    await register(a, "ck-durable");
    const before = leasePuts().length;
    const release = held.hold();
    clock.advance(1);
    const first = a.renewLease("ck-durable", "", 0);
    await held.waiting(1);
    expect(await settled(first)).toBe(false);
    const order: number[] = [];
    const rest = Array.from({ length: 100 }, (_, i) => {
      clock.advance(1);
      return a.renewLease("ck-durable", "", 0).then((l) => (order.push(i), l));
    });
    release();
    const answers = await Promise.all([first, ...rest]);
    expect(order).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // The first write carries the first renewal; the 100 behind it ride along in the second.
    expect(leasePuts().slice(before)).toEqual([[leaseKey("ck-durable")], [leaseKey("ck-durable")]]);
    const last = await sqlite.get(leaseKey("ck-durable"));
    expect(answers.slice(1).every((l) => l.metadata!.resourceVersion === String(last!.modRevision))).toBe(true);
    expect(Number(answers[0]!.metadata!.resourceVersion)).toBeLessThan(last!.modRevision);
    expect(renewMs(decodeLease(last!))).toBe(clock.now());
    await a.renewals.stop();
  });

  it("holds renewals back while a checkpoint has been in flight for C or longer, and answers them with the Lease as written", async () => {
    const { a, release } = await heldCheckpoint("ck-lag");
    clock.advance(999);
    const early = await a.renewLease("ck-lag", "", 0); // in flight for less than C: answered at once
    expect(renewMs(early)).toBe(clock.now());
    clock.advance(1);
    const late = a.renewLease("ck-lag", "", 0);
    expect(await settled(late)).toBe(false);
    release();
    const answer = await late;
    const kv = (await sqlite.get(leaseKey("ck-lag")))!;
    expect(answer.metadata!.resourceVersion).toBe(String(kv.modRevision));
    expect(renewMs(answer)).toBe(clock.now());
    expect(renewMs(decodeLease(kv))).toBe(clock.now());
    // Caught up: renewals are answered at once again.
    await a.renewals.checkpoint();
    expect(await settled(a.renewLease("ck-lag", "", 0))).toBe(true);
    await a.renewals.stop();
  });

  it("with a lag limit L above C, a checkpoint running longer than C only makes the next one larger; from L on renewals wait", async () => {
    const a = server(1000, 5000);
    await register(a, "ck-lag-limit");
    await register(a, "ck-lag-other");
    clock.advance(10);
    await a.renewLease("ck-lag-limit", "", 0);
    const release = held.hold();
    clock.advance(990); // the first checkpoint starts, and is held
    await held.waiting(1);
    const before = leasePuts().length;
    // In flight for C and more, below L: renewals of both Leases are answered at once, and the
    // timer's checkpoints only become due (none runs beside the first).
    clock.advance(2000);
    expect(renewMs(await a.renewLease("ck-lag-limit", "", 0))).toBe(clock.now());
    clock.advance(1000);
    expect(renewMs(await a.renewLease("ck-lag-other", "", 0))).toBe(clock.now());
    clock.advance(1999);
    const answeredAtOnce = await a.renewLease("ck-lag-limit", "", 0);
    expect(renewMs(answeredAtOnce)).toBe(clock.now());
    expect(leasePuts().length).toBe(before);
    // In flight for L: renewals wait for the checkpoint that writes them.
    clock.advance(1);
    const late = a.renewLease("ck-lag-other", "", 0);
    expect(await settled(late)).toBe(false);
    release();
    // The next checkpoint writes both Leases once, with their latest renew times, and answers the late one.
    const answer = await late;
    expect(renewMs(answer)).toBe(clock.now());
    expect(answer.metadata!.resourceVersion).toBe(String((await sqlite.get(leaseKey("ck-lag-other")))!.modRevision));
    expect(leasePuts().slice(before).flat().sort()).toEqual([leaseKey("ck-lag-limit"), leaseKey("ck-lag-other")]);
    expect(renewMs(await stored("ck-lag-limit"))).toBe(renewMs(answeredAtOnce));
    await a.renewals.stop();
  });

  it("one hot Lease while a checkpoint lags: 256 renewals in flight wait, ride along in one write, and are answered in order", async () => {
    const { a, release } = await heldCheckpoint("ck-hot-lag");
    clock.advance(1000); // in flight for C: renewals are held back (and the next checkpoint is due)
    const before = leasePuts().length;
    const order: number[] = [];
    const answers = Array.from({ length: 256 }, (_, i) => {
      clock.advance(1);
      return a.renewLease("ck-hot-lag", "", 0).then((l) => (order.push(i), l));
    });
    expect(await settled(answers[0]!)).toBe(false);
    release();
    const leases = await Promise.all(answers);
    expect(order).toEqual(Array.from({ length: 256 }, (_, i) => i));
    // One write for 256 renewals (the held checkpoint's own txn was recorded before `before`).
    expect(leasePuts().slice(before)).toEqual([[leaseKey("ck-hot-lag")]]);
    const kv = (await sqlite.get(leaseKey("ck-hot-lag")))!;
    expect(leases.every((l) => l.metadata!.resourceVersion === String(kv.modRevision))).toBe(true);
    expect(renewMs(decodeLease(kv))).toBe(clock.now());
    await a.renewals.stop();
  });

  it("a failed checkpoint fails the renewals waiting for it; its Leases go into the next one, and renewals wait until one succeeds", async () => {
    let failed: () => void = () => {};
    const nextFailure = (): Promise<void> => new Promise((resolve) => (failed = resolve));
    const a = new NodeRegistry({ store: held.store, clock, leaseCheckpointMs: 1000, onCheckpointError: () => failed() });
    a.renewals.start();
    await register(a, "ck-fail");
    clock.advance(10);
    const acked = await a.renewLease("ck-fail", "", 0);
    // Checkpoint 1 fails; the renewal it carried was answered already.
    let release = held.hold();
    clock.advance(990);
    await held.waiting(1);
    const first = nextFailure();
    release(new UnavailableError("storage unavailable: test"));
    await first;
    // Until a checkpoint succeeds, a renewal waits for the one that writes it: checkpoint 2 fails too.
    clock.advance(1);
    const waiting = a.renewLease("ck-fail", "", 0);
    expect(await settled(waiting)).toBe(false);
    release = held.hold();
    clock.advance(999);
    await held.waiting(1);
    const second = nextFailure();
    release(new UnavailableError("storage unavailable: test"));
    await expect(waiting).rejects.toBeInstanceOf(UnavailableError);
    await second;
    // Checkpoint 3 writes every renewal answered or tried so far.
    clock.advance(1);
    const next = a.renewLease("ck-fail", "", 0);
    expect(await settled(next)).toBe(false);
    await a.renewals.checkpoint();
    expect(renewMs(await next)).toBe(clock.now());
    expect(renewMs(await stored("ck-fail"))).toBe(clock.now());
    expect(clock.now()).toBeGreaterThan(renewMs(acked));
    await a.renewals.stop();
  });

  it("a change of holder or duration is a durable write answered after its commit, covering the renewals before it", async () => {
    const a = server();
    await register(a, "ck-holder");
    clock.advance(10);
    await a.renewLease("ck-holder", "", 0);
    const before = leasePuts().length;
    clock.advance(10);
    const changed = await a.renewLease("ck-holder", "", 20);
    expect(leasePuts().length).toBe(before + 1);
    const kv = (await sqlite.get(leaseKey("ck-holder")))!;
    expect(changed.metadata!.resourceVersion).toBe(String(kv.modRevision));
    expect(decodeLease(kv).spec).toEqual(changed.spec);
    expect(changed.spec!.leaseDurationSeconds).toBe(20);
    await a.renewals.checkpoint();
    expect(leasePuts().length).toBe(before + 1);
    await a.renewals.stop();
  });

  it("a new server starts each Lease from one read of the store, then renews from memory", async () => {
    const a = server();
    await register(a, "ck-restart");
    await a.renewals.stop();
    const { store: counted, gets } = countingGets(held.store);
    const r = new NodeRegistry({ store: counted, clock, leaseCheckpointMs: 1000 });
    const before = held.puts.length;
    clock.advance(10);
    await r.renewLease("ck-restart", "", 0);
    clock.advance(10);
    const second = await r.renewLease("ck-restart", "", 0);
    expect(gets).toEqual([leaseKey("ck-restart")]);
    expect(held.puts.length).toBe(before);
    expect(renewMs(second)).toBe(clock.now());
    await r.renewals.stop();
  });

  it("a new server that loaded the stored Leases answers each node's first renewal from memory: no read, no write", async () => {
    const a = server();
    const names = ["ck-load-1", "ck-load-2", "ck-load-3"];
    const registered = await Promise.all(names.map((n) => register(a, n)));
    await a.renewals.stop();
    const informers = sharedInformers({ store: sqlite, clock, onError: (kind, err) => expect.fail(`${kind} informer: ${err.message}`) });
    informers.start();
    const { store, gets } = countingGets(held.store);
    const r = new NodeRegistry({ store, clock, leaseCheckpointMs: 1000 });
    const loaded = await r.loadLeases(informers.nodes, new AbortController().signal);
    expect(loaded).toBe((await sqlite.list(LEASE_PREFIX)).kvs.length);
    const before = held.puts.length;
    clock.advance(10);
    const renewed = await Promise.all(names.map((n) => r.renewLease(n, "", 0)));
    expect(gets).toEqual([]);
    expect(held.puts.length).toBe(before);
    renewed.forEach((lease, i) => {
      expect(renewMs(lease)).toBe(clock.now());
      expect({ ...lease, spec: { ...lease.spec, renewTime: undefined } }).toEqual({ ...registered[i]!, spec: { ...registered[i]!.spec, renewTime: undefined } });
    });
    await r.renewals.checkpoint();
    for (const [i, n] of names.entries()) expect(await stored(n)).toEqual(withResourceVersion(renewed[i]!, (await stored(n)).metadata!.resourceVersion));
    await r.renewals.stop();
    await informers.stop();
  });

  it("loading the stored Leases never makes a deleted node's renewal succeed, whether the delete is seen before or after its page", async () => {
    const a = server();
    await register(a, "ck-load-gone");
    await a.renewals.stop();
    const informers = sharedInformers({ store: sqlite, clock, onError: (kind, err) => expect.fail(`${kind} informer: ${err.message}`) });
    informers.start();
    const r = new NodeRegistry({ store: held.store, clock, leaseCheckpointMs: 1000 });
    // As core.ts does: a node deleted through another server is forgotten when the informer sees it.
    const unsubscribe = informers.nodes.subscribe({ onDelete: (name, _old, revision) => r.renewals.forget(name, revision) });
    let deletedAt = 0;
    // The node is deleted after its Lease's page was read, while the load waits for the informer.
    const nodes = {
      get: (name: string) => informers.nodes.get(name),
      async waitFor(revision: number) {
        const ok = await informers.nodes.waitFor(revision);
        if (deletedAt === 0) {
          const b = server();
          await b.deleteNode("ck-load-gone", (await b.getNode("ck-load-gone")).metadata!.resourceVersion);
          await b.renewals.stop();
          deletedAt = await sqlite.currentRevision();
        }
        return ok;
      },
    };
    await r.loadLeases(nodes, new AbortController().signal);
    expect(await informers.nodes.waitFor(deletedAt)).toBe(true);
    expect(r.renewals.knows("ck-load-gone")).toBe(false);
    await expect(r.renewLease("ck-load-gone", "", 0)).rejects.toBeInstanceOf(NotFoundError);
    unsubscribe();
    await r.renewals.stop();
    await informers.stop();
  });

  it("loading leaves out a stored Lease that does not decode, and loads the rest", async () => {
    const a = server();
    await register(a, "ck-load-bad");
    await register(a, "ck-load-good");
    await a.renewals.stop();
    const bad = await sqlite.get(leaseKey("ck-load-bad"));
    await sqlite.txn({ compare: [{ key: leaseKey("ck-load-bad"), modRevision: bad!.modRevision }], ops: [{ type: "put", key: leaseKey("ck-load-bad"), value: new Uint8Array([0x0a, 0xff, 0xff]) }] });
    const informers = sharedInformers({ store: sqlite, clock, onError: () => {} });
    informers.start();
    await informers.nodes.synced();
    const r = new NodeRegistry({ store: held.store, clock, leaseCheckpointMs: 1000 });
    await r.loadLeases(informers.nodes, new AbortController().signal);
    expect(r.renewals.knows("ck-load-bad")).toBe(false);
    expect(r.renewals.knows("ck-load-good")).toBe(true);
    await expect(r.renewLease("ck-load-bad", "", 0)).rejects.toThrow();
    await r.renewals.stop();
    await informers.stop();
    // The other tests' informers must not meet it.
    await sqlite.txn({ compare: [], ops: [{ type: "delete", key: leaseKey("ck-load-bad") }] });
  });

  it("loading leaves a Lease this server wrote since as it is, and stops when aborted", async () => {
    const a = server();
    await register(a, "ck-load-mine");
    const informers = sharedInformers({ store: sqlite, clock, onError: (kind, err) => expect.fail(`${kind} informer: ${err.message}`) });
    informers.start();
    clock.advance(10);
    const mine = await a.renewLease("ck-load-mine", "", 0); // answered from memory, not yet written
    await a.loadLeases(informers.nodes, new AbortController().signal);
    expect(await a.getLease("ck-load-mine")).toEqual(mine);
    clock.advance(10);
    expect(renewMs(await a.renewLease("ck-load-mine", "", 0))).toBe(clock.now());
    const aborted = new AbortController();
    aborted.abort();
    const r = new NodeRegistry({ store: held.store, clock, leaseCheckpointMs: 1000 });
    expect(await r.loadLeases(informers.nodes, aborted.signal)).toBe(0);
    expect(r.renewals.knows("ck-load-mine")).toBe(false);
    await Promise.all([a.renewals.stop(), r.renewals.stop()]);
    await informers.stop();
  });

  it("a renewal on a stale copy is rebased on another server's write at the checkpoint: that write's holder and duration stay, the later renew time wins", async () => {
    const a = server();
    const b = server();
    await register(a, "ck-rebase");
    clock.advance(10);
    const other = await b.renewLease("ck-rebase", "another-holder", 30);
    clock.advance(10);
    const mine = await a.renewLease("ck-rebase", "", 0); // from a's stale copy
    expect(renewMs(mine)).toBe(clock.now());
    await a.renewals.checkpoint(); // the compare fails: rebased
    await a.renewals.checkpoint(); // written over b's write
    const now = await stored("ck-rebase");
    expect(now.spec!.holderIdentity).toBe("another-holder");
    expect(now.spec!.leaseDurationSeconds).toBe(30);
    expect(now.spec!.leaseTransitions).toBe(other.spec!.leaseTransitions);
    expect(renewMs(now)).toBe(renewMs(mine));
    await Promise.all([a.renewals.stop(), b.renewals.stop()]);
  });

  it("a node deleted through another server: its Lease is forgotten at the checkpoint, and the next renewal answers NotFound", async () => {
    const a = server();
    const b = server();
    await register(a, "ck-gone");
    const node = await b.getNode("ck-gone");
    await b.deleteNode("ck-gone", node.metadata!.resourceVersion);
    await a.renewLease("ck-gone", "", 0); // a has not heard of it yet
    await a.renewals.checkpoint();
    await expect(a.renewLease("ck-gone", "", 0)).rejects.toBeInstanceOf(NotFoundError);
    expect(await sqlite.get(leaseKey("ck-gone"))).toBeUndefined();
    await Promise.all([a.renewals.stop(), b.renewals.stop()]);
  });

  it("forgets a deleted node's Lease: a new node of that name gets a new Lease", async () => {
    const a = server();
    await register(a, "ck-again");
    const before = await a.renewLease("ck-again", "", 0);
    const node = await a.getNode("ck-again");
    await a.deleteNode("ck-again", node.metadata!.resourceVersion);
    await register(a, "ck-again");
    const after = await a.renewLease("ck-again", "", 0);
    expect(after.metadata!.uid).not.toBe(before.metadata!.uid);
    expect(await a.getLease("ck-again")).toEqual(after);
    await a.renewals.checkpoint();
    expect((await stored("ck-again")).metadata!.uid).toBe(after.metadata!.uid);
    await a.renewals.stop();
  });

  it("stop() writes every renewal answered so far; renewals after it are durable writes", async () => {
    const a = server();
    await register(a, "ck-stop");
    clock.advance(10);
    const renewed = await a.renewLease("ck-stop", "", 0);
    await a.renewals.stop();
    expect(renewMs(await stored("ck-stop"))).toBe(renewMs(renewed));
    clock.advance(10);
    const after = await a.renewLease("ck-stop", "", 0);
    expect(renewMs(await stored("ck-stop"))).toBe(renewMs(after));
  });

  it("a large checkpoint is built and sent a slice at a time, at most two slices in flight, and writes every Lease", async () => {
    // 2 Leases per transaction, 4 per slice: 11 Leases are slices of 4, 4 and 3.
    const r = new LeaseRenewals({ store: held.store, clock, intervalMs: 1000, chunkOps: 2, sliceOps: 4 });
    const names = Array.from({ length: 11 }, (_, i) => `ck-slice-${i}`);
    for (const name of names) {
      const lease = Lease.fromPartial({ metadata: { name, namespace: "kube-node-lease" }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: new Date(clock.now()) } });
      const res = await sqlite.txn({ compare: [], ops: [{ type: "put", key: leaseKey(name), value: encodeLease(lease) }] });
      if (!res.succeeded) throw new Error("put failed");
      r.written(name, lease, res.results[0]!);
    }
    clock.advance(10);
    for (const name of names) r.renew(name, { holderIdentity: "", leaseDurationSeconds: 0 }, clock.now());
    const before = held.puts.length;
    const release = held.hold();
    const done = r.checkpoint();
    // Two slices (2 + 2 transactions) go out; the third waits for the first.
    await held.waiting(4);
    for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(held.puts.length - before).toBe(4);
    // Renewed again meanwhile: a Lease of a slice not yet built rides along with its latest
    // renewal; one already sent keeps it for the next checkpoint.
    const first = clock.now();
    clock.advance(10);
    for (const name of [names[0]!, names[10]!]) r.renew(name, { holderIdentity: "", leaseDurationSeconds: 0 }, clock.now());
    release();
    await done;
    expect(held.puts.slice(before).map((keys) => keys.length)).toEqual([2, 2, 2, 2, 2, 1]);
    expect(new Set(held.puts.slice(before).flat())).toEqual(new Set(names.map(leaseKey)));
    for (const name of names.slice(1, 10)) expect(renewMs(await stored(name))).toBe(first);
    expect(renewMs(await stored(names[10]!))).toBe(clock.now());
    expect(renewMs(await stored(names[0]!))).toBe(first);
    await r.checkpoint();
    expect(held.puts.at(-1)).toEqual([leaseKey(names[0]!)]);
    expect(renewMs(await stored(names[0]!))).toBe(clock.now());
  });

  describe("with a write interval S", () => {
    const S = 20_000;
    /** A server checkpointing every second with write interval S (the Leases' duration: 40 s, so S applies whole). */
    function spaced(): NodeRegistry {
      const r = new NodeRegistry({ store: held.store, clock, leaseCheckpointMs: 1000, leaseWriteIntervalMs: S });
      r.renewals.start();
      return r;
    }
    /** Step the clock by `ms` in checkpoint intervals, each checkpoint awaited. */
    async function run(r: NodeRegistry, ms: number): Promise<void> {
      for (let t = 0; t < ms; t += 1000) {
        clock.advance(1000);
        await r.renewals.idle();
      }
    }

    it("a Lease renewed every S/4 is written about once per S; its stored renew time trails the latest renewal by less than S", async () => {
      const a = spaced();
      await register(a, "ws-steady");
      const before = leasePuts().length;
      let latest = 0;
      for (let i = 0; i < 16; i++) {
        latest = renewMs(await a.renewLease("ws-steady", "", 0));
        await run(a, S / 4);
        expect(latest - renewMs(await stored("ws-steady"))).toBeLessThan(S);
        expect(renewMs(await a.getLease("ws-steady"))).toBe(latest);
      }
      // 16 renewals over 4 × S: one write per write period entered (4, or 5 with the edges), not 16.
      const writes = leasePuts().slice(before).length;
      expect(writes).toBeGreaterThanOrEqual(3);
      expect(writes).toBeLessThanOrEqual(5);
      await a.renewals.stop();
    });

    it("a Lease renewed at an interval close to S is still written at least every 1.25 × S + C, never trailing by more", async () => {
      const a = spaced();
      await register(a, "ws-slow");
      let revision = (await sqlite.get(leaseKey("ws-slow")))!.modRevision;
      let lastWrite = clock.now();
      let latest = clock.now();
      let writes = 0;
      for (let i = 0; i < 30; i++) {
        latest = renewMs(await a.renewLease("ws-slow", "", 0));
        // 19 s and a little more (an agent's jitter), in checkpoint steps.
        for (let t = 0; t < 19_000 + (i % 4) * 250; t += 250) {
          clock.advance(250);
          await a.renewals.idle();
          const kv = (await sqlite.get(leaseKey("ws-slow")))!;
          if (kv.modRevision !== revision) {
            revision = kv.modRevision;
            lastWrite = clock.now();
            writes++;
          }
          expect(clock.now() - lastWrite).toBeLessThan(1.25 * S + 1000 + 250);
          expect(latest - renewMs(decodeLease(kv))).toBeLessThan(1.25 * S + 1000);
        }
      }
      expect(writes).toBeLessThan(30);
      await a.renewals.stop();
    });

    /** Step the clock to just past the start of one of `name`'s write periods (phase-independent tests). */
    function toPeriodStart(name: string): void {
      const into = (clock.now() + phaseOf(name) * S) % S;
      clock.advance(Math.ceil(S - into) + 1);
    }

    it("a renewal left for later (a node that stopped renewing) is written at the first checkpoint once it is S old, not before; stop() writes one at once", async () => {
      const a = spaced();
      toPeriodStart("ws-last");
      await register(a, "ws-last");
      await run(a, 1000); // the registration is written (a durable write)
      const registered = renewMs(await stored("ws-last"));
      clock.advance(10);
      const last = renewMs(await a.renewLease("ws-last", "", 0)); // same write period as the stored one
      let writtenAt: number | undefined;
      while (writtenAt === undefined) {
        await run(a, 1000);
        const now = renewMs(await stored("ws-last"));
        if (now !== registered) {
          expect(now).toBe(last);
          writtenAt = clock.now();
        }
        expect(clock.now() - last).toBeLessThanOrEqual(S + 1000);
      }
      // Left for later by every checkpoint while younger than S, written by the first after. The
      // checkpoints run 10 ms before each look (the renewal came 10 ms after one): one that wrote
      // it at 990 ms short of S would be seen at exactly S.
      expect(writtenAt - last).toBeGreaterThan(S);
      expect(writtenAt - last).toBeLessThanOrEqual(S + 1000);
      clock.advance(10);
      const next = renewMs(await a.renewLease("ws-last", "", 0));
      await a.renewals.stop();
      expect(renewMs(await stored("ws-last"))).toBe(next);
    });

    it("a renewal left for later counts as pending, once however often renewed, until written or its node is deleted", async () => {
      const a = spaced();
      /** A Lease whose renewal the last checkpoint left for later. */
      const deferred = async (name: string): Promise<void> => {
        toPeriodStart(name);
        await register(a, name);
        await run(a, 1000);
        clock.advance(10);
        await a.renewLease(name, "", 0);
        await run(a, 1000);
      };
      await deferred("ws-count-a");
      expect(a.renewals.pendingCount).toBe(1);
      clock.advance(10);
      await a.renewLease("ws-count-a", "", 0); // renewed again while left for later
      expect(a.renewals.pendingCount).toBe(1);
      await run(a, 1000);
      expect(a.renewals.pendingCount).toBe(1);
      a.renewals.forget("ws-count-a");
      expect(a.renewals.pendingCount).toBe(0);
      await deferred("ws-count-b");
      expect(a.renewals.pendingCount).toBe(1);
      await run(a, S + 1000); // written once S old
      expect(a.renewals.pendingCount).toBe(0);
      await a.renewals.stop();
    });

    it("a renewal that waits for its checkpoint (the last one failed) is written by the next one, whatever its write period", async () => {
      let failed: () => void = () => {};
      const failure = new Promise<void>((resolve) => (failed = resolve));
      const a = new NodeRegistry({ store: held.store, clock, leaseCheckpointMs: 1000, leaseWriteIntervalMs: S, onCheckpointError: () => failed() });
      a.renewals.start();
      await register(a, "ws-old");
      await run(a, S + 1000);
      await register(a, "ws-fresh");
      await a.renewLease("ws-old", "", 0); // stored S old: the next checkpoint writes it
      const release = held.hold();
      clock.advance(1000);
      await held.waiting(1);
      release(new UnavailableError("storage unavailable: test"));
      await failure;
      // Held back until a checkpoint succeeds: this renewal waits, though its write period is the stored one's.
      clock.advance(10);
      const waiting = a.renewLease("ws-fresh", "", 0);
      expect(await settled(waiting)).toBe(false);
      clock.advance(990);
      const answer = await waiting;
      expect(renewMs(answer)).toBe(clock.now() - 990);
      expect(renewMs(await stored("ws-fresh"))).toBe(renewMs(answer));
      await a.renewals.stop();
    });
  });
});
