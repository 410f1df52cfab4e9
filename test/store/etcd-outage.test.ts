/**
 * EtcdStore when etcd members go away: calls fail fast with UnavailableError while no member
 * answers, and watches resume with no gap and no duplicate once one does; with three members,
 * losing one costs at most a call that was on its way to it; losing two makes calls fail fast.
 */
import { Etcd3 } from "etcd3";
import { afterEach, describe, expect, it } from "vitest";
import { UnavailableError } from "../../src/errors.js";
import { EtcdStore } from "../../src/store/etcd.js";
import { type EtcdCluster, startEtcd } from "../support/etcd.js";
import { put, Recorder } from "./conformance-support.js";

describe("EtcdStore, etcd members going away", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  const startCluster = async (members: 1 | 3): Promise<EtcdCluster> => {
    const cluster = await startEtcd({ members });
    cleanup.push(() => cluster.stop());
    return cluster;
  };
  const openStore = async (endpoints: string[]): Promise<EtcdStore> => {
    const store = await EtcdStore.open({ endpoints, requestTimeoutMs: 2000 });
    cleanup.push(() => store.close());
    return store;
  };

  it("while its only member is down, calls fail with UnavailableError; once it is back, writes work and the watch has no gap or duplicate", async () => {
    const cluster = await startCluster(1);
    const store = await openStore(cluster.endpoints);
    const start = await store.currentRevision();
    const rec = new Recorder();
    store.watch("/k/", start, rec);
    const before: number[] = [];
    for (let i = 0; i < 5; i++) before.push(await put(store, `/k/${i}`, "before"));
    await rec.untilRevision(before.at(-1)!);

    await cluster.members[0]!.kill();
    for (const call of [() => put(store, "/k/x", "v"), () => store.get("/k/0"), () => store.list("/k/"), () => store.ping()]) {
      await expect(call()).rejects.toBeInstanceOf(UnavailableError);
    }

    await cluster.members[0]!.start();
    const after: number[] = [];
    for (let i = 0; i < 5; i++) after.push(await put(store, `/k/${i}`, "after"));
    await rec.untilRevision(after.at(-1)!);
    expect(rec.events.map((e) => e.kv.modRevision)).toEqual([...before, ...after]);
    expect(rec.error).toBeUndefined();
    rec.expectClean();
  });

  it("with three members, losing one (not the leader) costs at most the call in flight on it: later calls succeed and the watch goes on", async () => {
    const cluster = await startCluster(3);
    const store = await openStore(cluster.endpoints);
    const start = await store.currentRevision();
    const rec = new Recorder();
    store.watch("/k/", start, rec);
    const revs: number[] = [];
    for (let i = 0; i < 20; i++) revs.push(await put(store, `/k/${i}`, "v"));

    const victim = await follower(cluster);
    await victim.kill();
    // A call sent on the connection the member had may fail (its outcome unknown to the client);
    // once the client has seen the connection drop, calls go to the other members.
    const failed: number[] = [];
    for (let i = 20; i < 60; i++) {
      try {
        revs.push(await put(store, `/k/${i}`, "v"));
      } catch (err) {
        expect(err).toBeInstanceOf(UnavailableError);
        expect((err as Error).message).toContain("whether it was applied is unknown");
        failed.push(i);
        const applied = await store.get(`/k/${i}`);
        if (applied) revs.push(applied.modRevision);
      }
    }
    expect(failed.length).toBeLessThanOrEqual(1);
    expect((await store.list("/k/")).kvs.length).toBe(revs.length);
    await rec.untilRevision(revs.at(-1)!);
    expect(rec.events.map((e) => e.kv.modRevision)).toEqual(revs);
    rec.expectClean();
  });

  it("with two of three members down, writes fail with UnavailableError, the first when etcd gives up on it, the next ones at once; they work again once the members are back", async () => {
    const cluster = await startCluster(3);
    // A deadline far beyond the test's timeout: etcd's own answer ends these calls. The survivor
    // answers a write it took before it lost its leader after its request timeout (7 s); then
    // the client skips it for a moment and the other calls fail at once.
    const store = await EtcdStore.open({ endpoints: cluster.endpoints, requestTimeoutMs: 600_000 });
    cleanup.push(() => store.close());
    await put(store, "/k/a", "1");

    const [a, b] = cluster.members;
    await Promise.all([a!.kill(), b!.kill()]);
    for (let i = 0; i < 3; i++) {
      const err = await put(store, "/k/a", "2").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
    }
    await expect(store.get("/k/a")).rejects.toBeInstanceOf(UnavailableError);

    await Promise.all([a!.start(), b!.start()]);
    const rev = await put(store, "/k/a", "3");
    expect((await store.get("/k/a"))?.modRevision).toBe(rev);
  });
});

/** A member that is not the raft leader. */
async function follower(cluster: EtcdCluster): Promise<EtcdCluster["members"][number]> {
  for (const member of cluster.members) {
    const client = new Etcd3({ hosts: member.clientUrl });
    try {
      const status = await client.maintenance.status({});
      if (status.leader !== status.header.member_id) return member;
    } finally {
      client.close();
    }
  }
  throw new Error("every member says it leads");
}
