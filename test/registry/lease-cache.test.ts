/**
 * A renewal starts from the Lease this registry last wrote, not from a store read; the compare
 * on its revision makes a stale entry harmless. Two registries on one store stand in for two
 * servers (replicas on etcd) writing the same Leases.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { NotFoundError } from "../../src/errors.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { KeyValue, Store } from "../../src/store/store.js";
import { realisticNode } from "../support/realistic-node.js";

const clock = new FakeClock(Date.UTC(2026, 10, 26, 3, 0, 0));
let dir: string;
let store: SqliteStore;
let gets: string[];
/** The store with its reads of single keys recorded. */
let counted: Store;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-lease-cache-"));
  store = await SqliteStore.open({ dir });
  gets = [];
  const s: Store = store;
  counted = {
    get: (key: string): Promise<KeyValue | undefined> => {
      gets.push(key);
      return s.get(key);
    },
    list: (prefix, opts) => s.list(prefix, opts),
    txn: (req) => s.txn(req),
    watch: (prefix, after, listener) => s.watch(prefix, after, listener),
    compact: (rev) => s.compact(rev),
    currentRevision: () => s.currentRevision(),
    compactRevision: () => s.compactRevision(),
    ping: () => s.ping(),
    close: () => s.close(),
  };
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function registered(name: string, i: number): Promise<{ a: NodeRegistry; b: NodeRegistry }> {
  const a = new NodeRegistry({ store: counted, clock });
  const b = new NodeRegistry({ store, clock });
  await a.register(Node.fromPartial(realisticNode(i, name)));
  return { a, b };
}

describe("lease renewal from the registry's last write", () => {
  it("renews a Lease it wrote without reading the store, and answers what a read returns", async () => {
    const { a } = await registered("cache-1", 1);
    gets.length = 0;
    clock.advance(10_000);
    const first = await a.renewLease("cache-1", "", 0);
    clock.advance(10_000);
    const second = await a.renewLease("cache-1", "", 0);
    expect(gets).toEqual([]);
    expect(Number(second.metadata!.resourceVersion)).toBeGreaterThan(Number(first.metadata!.resourceVersion));
    expect(second.spec!.renewTime).toEqual(new Date(clock.now()));
    expect(await a.getLease("cache-1")).toEqual(second);
  });

  it("retries from the store when someone else renewed the Lease since (the compare fails)", async () => {
    const { a, b } = await registered("cache-2", 2);
    clock.advance(10_000);
    const other = await b.renewLease("cache-2", "another-holder", 30);
    gets.length = 0;
    clock.advance(10_000);
    const mine = await a.renewLease("cache-2", "", 0);
    expect(gets).toEqual(["/registry/leases/kube-node-lease/cache-2"]);
    // Built on the other server's write: its holder and duration stay.
    expect(mine.spec!.holderIdentity).toBe("another-holder");
    expect(mine.spec!.leaseDurationSeconds).toBe(30);
    expect(mine.spec!.leaseTransitions).toBe(other.spec!.leaseTransitions);
    expect(Number(mine.metadata!.resourceVersion)).toBeGreaterThan(Number(other.metadata!.resourceVersion));
    expect(await b.getLease("cache-2")).toEqual(mine);
  });

  it("answers NotFound when another server deleted the node (and its Lease) since", async () => {
    const { a, b } = await registered("cache-3", 3);
    const node = await b.getNode("cache-3");
    await b.deleteNode("cache-3", node.metadata!.resourceVersion);
    await expect(a.renewLease("cache-3", "", 0)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("forgets a deleted node's Lease: a new node of that name gets a new Lease", async () => {
    const { a } = await registered("cache-4", 4);
    const before = await a.renewLease("cache-4", "", 0);
    const node = await a.getNode("cache-4");
    await a.deleteNode("cache-4", node.metadata!.resourceVersion);
    await a.register(Node.fromPartial(realisticNode(4, "cache-4")));
    const after = await a.renewLease("cache-4", "", 0);
    expect(after.metadata!.uid).not.toBe(before.metadata!.uid);
    expect(await a.getLease("cache-4")).toEqual(after);
  });
});
