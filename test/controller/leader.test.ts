/**
 * Leader election on fake clocks: acquire, renew, lose on the renew deadline, take over an
 * expired lease (judged by the challenger's own observation, whatever the record's times say),
 * release on stop, and never two leaders (the compare-and-swap on the record's version).
 * Each replica may have its own clock: a replica whose clock is no longer advanced is a
 * replica that froze or died. Store calls resolve at once; `flush()` lets them finish.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { LeaderElector } from "../../src/controller/leader.js";
import { UnavailableError } from "../../src/errors.js";
import { type LeaderLock, type LeaderRecord, StoreLeaderLock, type VersionedRecord } from "../../src/registry/leader-lock.js";
import { SqliteStore } from "../../src/store/sqlite.js";

const LEASE = 15_000;
const RENEW = 10_000;
const RETRY = 2_000;

/** One record with a version, as the store keeps it; `down` makes a replica's calls fail. */
class MemoryLock {
  private stored: VersionedRecord | undefined;
  private revision = 0;
  readonly down = new Set<string>();
  writes = 0;

  /** The lock as replica `who` reaches it. */
  for(who: string): LeaderLock {
    return {
      description: "kube-system/test",
      get: async () => {
        if (this.down.has(who)) throw new UnavailableError("store unreachable");
        return this.stored && { record: { ...this.stored.record }, version: this.stored.version };
      },
      write: async (record, version) => {
        if (this.down.has(who)) throw new UnavailableError("store unreachable");
        if ((this.stored?.version ?? 0) !== version) return undefined;
        this.writes++;
        this.stored = { record: { ...record }, version: ++this.revision };
        return this.revision;
      },
    };
  }

  get record(): LeaderRecord | undefined {
    return this.stored?.record;
  }

  /** Someone else writes the record (an operator, another cluster's tooling). */
  overwrite(record: LeaderRecord): void {
    this.stored = { record, version: ++this.revision };
  }
}

interface Replica {
  name: string;
  clock: FakeClock;
  elector: LeaderElector;
  /** onStartedLeading / onStoppedLeading, in order. */
  calls: string[];
}

const replicas: Replica[] = [];
afterEach(async () => {
  for (const r of replicas.splice(0)) await r.elector.stop();
});

function replica(name: string, lock: MemoryLock, clock = new FakeClock()): Replica {
  const calls: string[] = [];
  const elector = new LeaderElector({
    lock: lock.for(name),
    identity: name,
    clock,
    leaseDurationMs: LEASE,
    renewDeadlineMs: RENEW,
    retryPeriodMs: RETRY,
    jitter: 0,
    onStartedLeading: () => calls.push("started"),
    onStoppedLeading: () => calls.push("stopped"),
  });
  const r = { name, clock, elector, calls };
  replicas.push(r);
  return r;
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Advance every given clock by `ms` in steps of `step`, letting store calls finish after each. */
async function run(clocks: FakeClock[], ms: number, step = 100, check?: () => void): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    for (const c of clocks) c.advance(step);
    await flush();
    check?.();
  }
}

/** a leading, b started after it, both on one clock, after `ms` more. */
async function leaderAndFollower(ms: number): Promise<{ lock: MemoryLock; clock: FakeClock; a: Replica; b: Replica }> {
  const lock = new MemoryLock();
  const clock = new FakeClock();
  const a = replica("a", lock, clock);
  const b = replica("b", lock, clock);
  a.elector.start();
  await run([clock], 100);
  b.elector.start();
  await run([clock], ms);
  return { lock, clock, a, b };
}

const leaders = (rs: Replica[]): string[] => rs.filter((r) => r.elector.isLeader).map((r) => r.name);

describe("LeaderElector", () => {
  it("acquires a free lease at once and renews it every retry period, keeping acquire time and transitions", async () => {
    const lock = new MemoryLock();
    const a = replica("a", lock);
    a.elector.start();
    a.clock.advance(0);
    await flush();
    expect(a.elector.isLeader).toBe(true);
    expect(a.elector.leader).toBe("a");
    expect(a.calls).toEqual(["started"]);
    const acquired = lock.record!;
    expect(acquired).toMatchObject({ holderIdentity: "a", leaseDurationSeconds: 15, leaseTransitions: 0, acquireTime: a.clock.now() });

    await run([a.clock], 10 * RETRY);
    expect(lock.writes).toBe(11);
    expect(lock.record).toMatchObject({ holderIdentity: "a", acquireTime: acquired.acquireTime, renewTime: a.clock.now(), leaseTransitions: 0 });
    expect(a.calls).toEqual(["started"]);
  });

  it("never lets a second replica take a lease that is being renewed", async () => {
    const lock = new MemoryLock();
    const clock = new FakeClock();
    const a = replica("a", lock, clock);
    const b = replica("b", lock, clock);
    const c = replica("c", lock, clock);
    a.elector.start();
    clock.advance(0);
    await flush();
    b.elector.start();
    c.elector.start();
    await run([clock], 5 * LEASE, 100, () => expect(leaders([a, b, c])).toEqual(["a"]));
    expect([b.elector.leader, c.elector.leader]).toEqual(["a", "a"]);
    expect(b.calls).toEqual([]);
  });

  it("of replicas racing for a free lease exactly one wins: the others' writes fail the compare on its version", async () => {
    const lock = new MemoryLock();
    const clock = new FakeClock();
    const rs = ["a", "b", "c"].map((n) => replica(n, lock, clock));
    for (const r of rs) r.elector.start();
    await run([clock], 3 * LEASE, 100, () => expect(leaders(rs).length).toBeLessThanOrEqual(1));
    expect(leaders(rs)).toHaveLength(1);
    expect(lock.record!.leaseTransitions).toBe(0);
  });

  it("takes over a lease no longer renewed once a whole lease duration has passed since it last saw it change, whatever the record's times say", async () => {
    const lock = new MemoryLock();
    // The holder's clock is a year behind: its renew times say the lease expired long ago.
    const a = replica("a", lock, new FakeClock(Date.UTC(2025, 0, 1)));
    const b = replica("b", lock, new FakeClock(Date.UTC(2026, 0, 1)));
    a.elector.start();
    await run([a.clock], 100);
    b.elector.start();
    await run([a.clock, b.clock], 3 * LEASE, 100, () => expect(leaders([a, b])).toEqual(["a"]));

    // a dies right after a renewal: its clock stops, so it neither renews nor notices.
    await run([a.clock, b.clock], RETRY, 100);
    const lastRenewal = lock.writes;
    let tookOverAfter = 0;
    while (!b.elector.isLeader) {
      await run([b.clock], 100);
      tookOverAfter += 100;
      expect(tookOverAfter).toBeLessThanOrEqual(LEASE + RETRY);
    }
    // No sooner than a lease after its last renewal could have been seen, no later than one retry period more.
    expect(tookOverAfter).toBeGreaterThanOrEqual(LEASE - RETRY);
    expect(lock.writes).toBe(lastRenewal + 1);
    expect(lock.record).toMatchObject({ holderIdentity: "b", leaseTransitions: 1, acquireTime: b.clock.now() });
    expect(b.calls).toEqual(["started"]);
  });

  it("stops leading when it has not renewed within the renew deadline, before anyone may take over", async () => {
    const { lock, clock, a, b } = await leaderAndFollower(2 * RETRY);

    // a can no longer reach the store; b still can.
    lock.down.add("a");
    const cutAt = clock.now();
    let lostAt = 0;
    let wonAt = 0;
    await run([clock], 2 * LEASE, 100, () => {
      expect(leaders([a, b]).length).toBeLessThanOrEqual(1);
      if (!lostAt && !a.elector.isLeader) lostAt = clock.now();
      if (!wonAt && b.elector.isLeader) wonAt = clock.now();
    });
    // Its last successful renewal was sent at most one retry period before the cut.
    expect(lostAt - cutAt).toBeLessThanOrEqual(RENEW);
    expect(lostAt - cutAt).toBeGreaterThan(RENEW - RETRY - 1);
    expect(wonAt - cutAt).toBeGreaterThanOrEqual(LEASE - RETRY);
    expect(wonAt).toBeGreaterThan(lostAt);
    expect(a.calls).toEqual(["started", "stopped"]);
    expect(b.calls).toEqual(["started"]);

    // Back on the network, a finds b holding the lease and stays a follower.
    lock.down.delete("a");
    await run([clock], 2 * LEASE, 100, () => expect(leaders([a, b])).toEqual(["b"]));
    expect(a.elector.leader).toBe("b");
  });

  it("stops leading at once when it finds the record naming another holder", async () => {
    const lock = new MemoryLock();
    const a = replica("a", lock);
    a.elector.start();
    await run([a.clock], 100);
    lock.overwrite({ ...lock.record!, holderIdentity: "intruder" });
    await run([a.clock], RETRY);
    expect(a.elector.isLeader).toBe(false);
    expect(a.elector.leader).toBe("intruder");
    expect(a.calls).toEqual(["started", "stopped"]);
  });

  it("on stop releases the lease, and another replica takes it at its next read instead of after a whole lease", async () => {
    const { lock, clock, a, b } = await leaderAndFollower(3 * RETRY);
    await a.elector.stop();
    expect(a.calls).toEqual(["started", "stopped"]);
    expect(lock.record).toMatchObject({ holderIdentity: "", leaseDurationSeconds: 1 });
    await run([clock], RETRY);
    expect(b.elector.isLeader).toBe(true);
    expect(lock.record!.leaseTransitions).toBe(1);
    expect(clock.pendingTimers).toBeGreaterThan(0);
    await b.elector.stop();
    expect(clock.pendingTimers).toBe(0);
  });
});

describe("StoreLeaderLock", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("keeps the record as a Lease in kube-system, written only over the version it was read at", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nodeplane-leader-"));
    dirs.push(dir);
    const store = await SqliteStore.open({ dir });
    try {
      const a = new StoreLeaderLock(store);
      const b = new StoreLeaderLock(store);
      expect(a.description).toBe("kube-system/nodeplane-controllers");
      expect(await a.get()).toBeUndefined();
      const rec: LeaderRecord = { holderIdentity: "a", leaseDurationSeconds: 15, acquireTime: 1000, renewTime: 2000, leaseTransitions: 0 };
      const v1 = await a.write(rec, 0);
      expect(v1).toBeGreaterThan(0);
      // A second create, and a write over a stale version, change nothing.
      expect(await b.write({ ...rec, holderIdentity: "b" }, 0)).toBeUndefined();
      const seen = await b.get();
      expect(seen).toEqual({ record: rec, version: v1 });
      const v2 = await a.write({ ...rec, renewTime: 4000 }, v1!);
      expect(await b.write({ ...rec, holderIdentity: "b" }, v1!)).toBeUndefined();
      expect(await b.get()).toEqual({ record: { ...rec, renewTime: 4000 }, version: v2 });
      // Not a node Lease: nothing under kube-node-lease.
      expect((await store.list("/registry/leases/kube-node-lease/")).kvs).toEqual([]);
      expect((await store.get("/registry/leases/kube-system/nodeplane-controllers"))?.modRevision).toBe(v2);
    } finally {
      await store.close();
    }
  });
});
