/**
 * The server's shared informers: one Reflector per kind over the Store, built once by the server
 * and read by every part that needs the whole set — the watch cache (nodes), the controllers
 * (nodes, Leases), pod CIDR allocation (blocks). Each holds what its readers need and no more:
 * nodes as one decoded, interned, frozen copy (src/model/shared-node.ts); Leases as their renew
 * time only (100,000 Leases in a few MB); blocks as their owner's name.
 *
 * Readers never change what they are handed. They never see stored bytes but those of a node's
 * watched change, handed on (not kept) for the watch cache to send as they are.
 */
import type { Clock } from "../clock.js";
import { leaseRenewMs } from "../model/lease-bytes.js";
import { IPAM_PREFIX, LEASE_PREFIX, NODE_PREFIX } from "../model/keys.js";
import type { FullNode } from "../model/node.js";
import { SharedNodeDecoder } from "../model/shared-node.js";
import type { Store } from "../store/store.js";
import { Reflector, type ReflectorHandlers } from "./reflector.js";
import { storeSource } from "./store-source.js";

/** What readers of a shared informer may use (they neither start nor stop it). */
export interface SharedInformer<T> {
  /** Resolves once the first full list is in (or the informer stopped). */
  synced(): Promise<void>;
  readonly hasSynced: boolean;
  /** The last revision applied. */
  readonly revision: number;
  readonly size: number;
  get(name: string): T | undefined;
  entries(): IterableIterator<[string, T]>;
  /** Grows with every change to the contents: equal twice, nothing changed between. */
  readonly changes: number;
  /** Every name and object now, in one order (see Reflector.snapshot). */
  snapshot(): { names: string[]; objects: T[] };
  /** True once every change up to `revision` is applied; false if the informer stops first. */
  waitFor(revision: number): Promise<boolean>;
  /** Replays every object to onAdd, then reports every change until the returned function is called. */
  subscribe(handlers: ReflectorHandlers<T>): () => void;
}

export type NodeInformer = SharedInformer<FullNode>;

/** A Lease as the controllers read it: its renew time (ms since the epoch; -1 = never renewed). */
export type LeaseRenewTime = number;

/** Lease renew times as the lifecycle controller reads them: looked up by node name, never subscribed to. */
export type RenewTimes = Pick<SharedInformer<LeaseRenewTime>, "synced" | "get" | "waitFor">;

export interface SharedInformersOptions {
  store: Store;
  clock?: Clock;
  /** Failures the informers recover from (they relist or rewatch by themselves). */
  onError: (kind: string, err: Error) => void;
  /** Whether pod CIDR blocks are followed (--allocate-node-cidrs). */
  blocks?: boolean;
}

export interface SharedInformers {
  nodes: Reflector<FullNode>;
  leases: Reflector<LeaseRenewTime>;
  blocks: Reflector<string> | undefined;
  start(): void;
  stop(): Promise<void>;
}

export function sharedInformers(o: SharedInformersOptions): SharedInformers {
  const decoder = new SharedNodeDecoder();
  const make = <T>(kind: string, prefix: string, decode: Parameters<typeof storeSource<T>>[0]["decode"], pageSize: number, passStored = false): Reflector<T> =>
    new Reflector<T>({
      source: storeSource<T>({ store: o.store, prefix, decode, pageSize, passStored }),
      clock: o.clock,
      onError: (err) => o.onError(kind, err),
    });
  // Nodes in smaller pages: each is a few KB to decode, and calls are answered between pages.
  // Their watched changes carry their stored bytes on, for the watch cache's events (the
  // informer keeps none of them).
  const nodes = make<FullNode>("nodes", NODE_PREFIX, (kv, previous) => decoder.decode(kv, previous), 250, true);
  const leases = make<LeaseRenewTime>("leases", LEASE_PREFIX, (kv) => leaseRenewMs(kv.value), 500);
  const blocks = o.blocks ? make<string>("pod CIDR blocks", IPAM_PREFIX, (kv) => new TextDecoder().decode(kv.value), 500) : undefined;
  const all = [nodes, leases, ...(blocks ? [blocks] : [])];
  return {
    nodes,
    leases,
    blocks,
    start: () => all.forEach((r) => void r.start()),
    stop: async () => {
      await Promise.all(all.map((r) => r.stop()));
    },
  };
}
