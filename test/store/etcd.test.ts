/**
 * EtcdStore: the conformance suite on a real etcd (one member for the whole file, a fresh
 * etcd prefix per test), plus what only etcd shows.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import { Etcd3 } from "etcd3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CompactedError, InvalidError, UnavailableError } from "../../src/errors.js";
import { EtcdStore, type EtcdStoreOptions } from "../../src/store/etcd.js";
import { type EtcdCluster, freePort, startEtcd } from "../support/etcd.js";
import { describeStoreConformance, type StoreFactory } from "./conformance.js";
import { bytes, put, Recorder, text } from "./conformance-support.js";

let etcd: EtcdCluster | undefined;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

/** A prefix no other test uses; all of one length, so that none is a prefix of another. */
function freshPrefix(): string {
  return `/np-test-${randomBytes(6).toString("hex")}`;
}

function etcdFactory(): StoreFactory {
  let prefix = "";
  return {
    open: () => EtcdStore.open({ endpoints: etcd!.endpoints, prefix: (prefix = freshPrefix()) }),
    reopen: () => EtcdStore.open({ endpoints: etcd!.endpoints, prefix }),
    cleanup: async () => {},
  };
}

describeStoreConformance("etcd", etcdFactory());

describe("EtcdStore", () => {
  const opened: EtcdStore[] = [];
  const open = async (opts: Partial<EtcdStoreOptions> = {}): Promise<EtcdStore> => {
    const store = await EtcdStore.open({ endpoints: etcd!.endpoints, prefix: freshPrefix(), ...opts });
    opened.push(store);
    return store;
  };
  let raw: Etcd3 | undefined;
  /** A plain etcd client, for what happens behind the store's back. */
  const etcdClient = (): Etcd3 => (raw ??= new Etcd3({ hosts: etcd!.endpoints }));
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    raw?.close();
    raw = undefined;
  });

  it("two stores on one prefix take turns compacting: one marker write per compaction, and both refuse reads below it", async () => {
    const prefix = freshPrefix();
    const [a, b] = [await open({ prefix }), await open({ prefix })];
    const revs: number[] = [];
    for (let i = 0; i < 5; i++) revs.push(await put(a, `/k/${i}`, `v${i}`));
    const [r1, r2, r3] = [revs[1]!, revs[2]!, revs[3]!];
    const markerVersion = async () => Number((await etcdClient().get(prefix).exec()).kvs[0]!.version);

    // Both at once to the same revision: one moves the marker, the other finds it moved.
    await Promise.all([a.compact(r2), b.compact(r2)]);
    expect(await markerVersion()).toBe(1);
    expect([await a.compactRevision(), await b.compactRevision()]).toEqual([r2, r2]);

    // To different revisions: whichever order they run in, the higher one stands.
    await Promise.all([a.compact(r1), b.compact(r3), a.compact(r3)]);
    expect(await markerVersion()).toBe(2);
    for (const store of [a, b]) {
      expect(await store.compactRevision()).toBe(r3);
      const err = await store.list("/k/", { revision: r2 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CompactedError);
      expect((err as CompactedError).oldest).toBe(r3);
      const rec = new Recorder();
      store.watch("/k/", r2, rec);
      const ended = await rec.ended();
      expect(ended).toBeInstanceOf(CompactedError);
      expect(ended.message).toContain(String(r3));
    }
    // etcd itself was compacted too: its history below r3 is gone.
    const below = await etcdClient().get(`${prefix}/k/0`).revision(r2).exec().catch((e: unknown) => e);
    expect(String(below)).toContain("compacted");
  });

  it("reads and watches below a compaction done behind its back (etcd compacted directly) end with CompactedError naming an available revision", async () => {
    const store = await open();
    const r1 = await put(store, "/k/a", "1");
    const r2 = await put(store, "/k/a", "2");
    await etcdClient().kv.compact({ revision: r2 });
    expect(await store.compactRevision()).toBe(0);

    const listed = await store.list("/k/", { revision: r1 }).catch((e: unknown) => e);
    expect(listed).toBeInstanceOf(CompactedError);
    expect((listed as CompactedError).oldest).toBeGreaterThan(r1);

    // The store's marker check passes; etcd cancels the watch, with no reason the client keeps.
    const rec = new Recorder();
    store.watch("/k/", r1 - 1, rec);
    const err = (await rec.ended()) as CompactedError;
    expect(err).toBeInstanceOf(CompactedError);
    expect(err.requested).toBe(r1 - 1);
    expect(err.oldest).toBeGreaterThanOrEqual(r2);
    // The revision it names can be read and watched from.
    expect((await store.list("/k/", { revision: err.oldest })).kvs.map((kv) => text(kv.value))).toEqual(["2"]);
    rec.expectClean();
  });

  it("keeps its meta key out of sight and reports progress past revisions written outside its prefix", async () => {
    const prefix = freshPrefix();
    const store = await open({ prefix, progressCheckMs: 50 });
    const start = await store.currentRevision();
    const rec = new Recorder();
    store.watch("", start, rec);
    const r1 = await put(store, "/k/a", "1");
    await store.compact(r1);
    // Another cluster's write: no store watch stream sees it; the store makes one that passes it.
    const foreign = Number((await etcdClient().put("/another-cluster/x").value("y").exec()).header.revision);
    expect(await store.currentRevision()).toBe(foreign);
    await rec.untilRevision(foreign);
    expect(rec.summaries).toEqual([`put /k/a=1@${r1}`]);
    expect((await store.list("")).kvs.map((kv) => kv.key)).toEqual(["/k/a"]);
    expect(await store.get("")).toBeUndefined();
    rec.expectClean();
  });

  it("a txn etcd refuses (more ops than its --max-txn-ops) is InvalidError and changes nothing", async () => {
    const store = await open();
    const before = await store.currentRevision();
    const ops = Array.from({ length: 129 }, (_, i) => ({ type: "put" as const, key: `/k/${i}`, value: bytes("v") }));
    const err = await store.txn({ compare: [], ops }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidError);
    expect((err as Error).message).toContain("too many operations");
    expect(await store.currentRevision()).toBe(before);
  });

  it.each([
    ["no endpoint", { endpoints: [] }, "etcd-endpoints"],
    ["an endpoint that is not a URL", { endpoints: ["127.0.0.1:2379"] }, "etcd-endpoints"],
    ["http and https mixed", { endpoints: ["http://a:2379", "https://b:2379"] }, "etcd-endpoints"],
    ["TLS files with http", { endpoints: ["http://a:2379"], tls: { caFile: "/ca.pem" } }, "etcd-endpoints"],
    ["a certificate without its key", { endpoints: ["https://a:2379"], tls: { caFile: "/ca.pem", certFile: "/c.pem" } }, "etcd-keyfile"],
    ["a CA file that cannot be read", { endpoints: ["https://a:2379"], tls: { caFile: "/nonexistent/ca.pem" } }, "etcd-cafile"],
    ["an empty prefix", { endpoints: ["http://a:2379"], prefix: "" }, "etcd-prefix"],
  ] as const)("refuses %s with InvalidError naming the flag", async (_, opts, flag) => {
    const err = await EtcdStore.open({ ...opts, endpoints: [...opts.endpoints] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidError);
    expect((err as InvalidError).violations[0]!.field).toBe(flag);
  });

  it("the test etcd's ports lie below the kernel's ephemeral range, where no outgoing connection can take one while a member is down (CI once saw bind: address already in use)", async () => {
    const [low] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    const ports = etcd!.endpoints.map((url) => Number(new URL(url).port));
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    for (const port of ports) expect(port).toBeLessThan(low!);
    expect(new Set(ports).size).toBe(ports.length);
  });

  it("fails to open with UnavailableError when nothing listens at the endpoint", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    // A long deadline: only a refused connection can end this before the test's own timeout.
    const err = await EtcdStore.open({ endpoints: [url], requestTimeoutMs: 600_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(url);
  });

  it("fails calls with UnavailableError at the deadline when the endpoint accepts connections but never answers", async () => {
    const silent = net.createServer(() => {});
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      const err = await EtcdStore.open({ endpoints: [url], requestTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toContain(url);
    } finally {
      silent.close();
    }
  });
});
