/**
 * A watch cache over its own node informer, as the server builds them (src/server/core.ts), in
 * one object: tests that are about the cache start, stop and read it as one thing.
 */
import { type NodeInformer, sharedInformers } from "../../src/informer/shared.js";
import type { Store } from "../../src/store/store.js";
import { WatchCache, type WatchCacheOptions, type WatchRequest } from "../../src/watch/cache.js";
import type { Watcher } from "../../src/watch/watcher.js";

export class NodeCache {
  readonly nodes: NodeInformer;
  readonly cache: WatchCache;
  private readonly stopInformers: () => Promise<void>;
  private readonly startInformers: () => void;

  constructor(store: Store, opts: Omit<WatchCacheOptions, "store" | "nodes"> = {}) {
    const informers = sharedInformers({ store, onError: () => {} });
    this.nodes = informers.nodes;
    this.cache = new WatchCache({ store, nodes: informers.nodes, ...opts });
    this.startInformers = () => void informers.nodes.start();
    this.stopInformers = () => informers.nodes.stop();
  }

  /** Resolves once the nodes are loaded (or stopped). */
  start(): Promise<void> {
    const loaded = this.cache.start();
    this.startInformers();
    return loaded;
  }

  /** Ends the watchers, then stops the informer (waiting for a list in flight). */
  async stop(): Promise<void> {
    await this.cache.stop();
    await this.stopInformers();
  }

  watch(req: WatchRequest): Promise<Watcher> {
    return this.cache.watch(req);
  }

  get isLoaded(): boolean {
    return this.cache.isLoaded;
  }

  get watcherCount(): number {
    return this.cache.watcherCount;
  }

  get subscribe(): NodeInformer["subscribe"] {
    return (h) => this.nodes.subscribe(h);
  }

  get(name: string): ReturnType<NodeInformer["get"]> {
    return this.nodes.get(name);
  }

  waitFor(revision: number): Promise<boolean> {
    return this.nodes.waitFor(revision);
  }
}
