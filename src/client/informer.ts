/**
 * Informer: a local, always-current cache of Nodes kept in step with the server over gRPC,
 * as client-go's reflector + indexer do it: list (paged), watch from the list's revision,
 * relist when that revision is no longer retained (OUT_OF_RANGE), and on any other failure
 * back off with jitter (800 ms → 30 s, reset after 2 min of healthy watching) and watch
 * again from the last revision applied.
 *
 * Contract: handlers run synchronously, one at a time, in revision order; every change the
 * server reports after the first list reaches them once, none twice (an event at or below the
 * revision already applied is dropped). After a relist they see exactly the difference between
 * the old cache and the list: deletes first (names gone, or replaced by a new incarnation with
 * another uid), then adds and updates in the list's order; unchanged nodes are not reported.
 * No handler runs after stop() returns. Cached nodes are shared: do not mutate them.
 */
import { Backoff, type BackoffOptions, sleep } from "../backoff.js";
import { status } from "@grpc/grpc-js";
import { InvalidError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { type LabelSelector, matchesLabels, parseFieldSelector, parseLabelSelector } from "../validation/selector.js";
import type { NodeClient, WatchEvent } from "./client.js";
import { CancelledError, InvalidArgumentError, OutOfRangeError } from "./errors.js";

export interface InformerHandlers {
  /** A node entered the cache (created, started matching the selector, or seen by a list). */
  onAdd?: (node: Node) => void;
  /** A cached node changed. */
  onUpdate?: (oldNode: Node, newNode: Node) => void;
  /**
   * A node left the cache. From a watch: the server's DELETED object (the last state, stamped
   * with the deletion's revision). From a relist: the last state this cache had.
   */
  onDelete?: (node: Node) => void;
}


export interface InformerOptions extends InformerHandlers {
  client: NodeClient;
  /** Kubernetes label selector the server filters by (validated here: a bad one throws). */
  labelSelector?: string;
  /** Field selector over metadata.name and spec.unschedulable (validated here too). */
  fieldSelector?: string;
  /** Aborting it stops the informer, as stop() does. */
  signal?: AbortSignal;
  backoff?: BackoffOptions;
  /** Nodes per ListNodes page (default 500). */
  pageSize?: number;
  /**
   * Told of every failure the informer recovers from (a failed list or watch, OUT_OF_RANGE,
   * a handler that threw) before it retries. For logs and metrics; never stops the informer.
   */
  onError?: (err: Error) => void;
}

const DEFAULT_PAGE_SIZE = 500;

export class Informer {
  /** Resolves once the first full list is in the cache; rejects with CancelledError if stopped before. */
  readonly synced: Promise<void>;

  private readonly client: NodeClient;
  private readonly labelSelector: string;
  private readonly fieldSelector: string;
  private readonly pageSize: number;
  private readonly handlers: InformerHandlers;
  private readonly onError: (err: Error) => void;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private readonly userSignal: AbortSignal | undefined;
  private readonly items = new Map<string, Node>();
  /** The last revision applied; undefined until the first list. */
  private revision: bigint | undefined;
  private waiters: { revision: bigint; resolve: () => void; reject: (err: Error) => void }[] = [];
  private resolveSynced!: () => void;
  private rejectSynced!: (err: Error) => void;
  private isSynced = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private selectorMemo: { text: string; selector: LabelSelector } | undefined;

  constructor(opts: InformerOptions) {
    this.client = opts.client;
    this.labelSelector = opts.labelSelector ?? "";
    this.fieldSelector = opts.fieldSelector ?? "";
    localParse(() => parseLabelSelector(this.labelSelector));
    localParse(() => parseFieldSelector(this.fieldSelector));
    this.pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
    this.handlers = { onAdd: opts.onAdd, onUpdate: opts.onUpdate, onDelete: opts.onDelete };
    this.onError = opts.onError ?? (() => {});
    this.backoff = new Backoff(opts.backoff);
    this.synced = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    // A caller who never awaits `synced` must not get an unhandled rejection on stop().
    this.synced.catch(() => {});
    this.userSignal = opts.signal;
    if (this.userSignal?.aborted) void this.stop();
    else this.userSignal?.addEventListener("abort", this.onUserAbort, { once: true });
  }

  /** Start listing and watching in the background. Idempotent; does nothing once stopped. */
  start(): void {
    if (this.loop || this.stopped) return;
    this.loop = this.run().catch((err: unknown) => this.report(err));
  }

  /**
   * Stop: abort the in-flight list or watch and any backoff wait. No handler runs after this
   * returns; the promise resolves once the background loop has ended. Idempotent.
   */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.userSignal?.removeEventListener("abort", this.onUserAbort);
      this.abort.abort();
      const err = stoppedError();
      if (!this.isSynced) this.rejectSynced(err);
      for (const w of this.waiters) w.reject(err);
      this.waiters = [];
    }
    return this.loop ?? Promise.resolve();
  }

  /** Whether the first full list is in the cache. */
  get hasSynced(): boolean {
    return this.isSynced;
  }

  /** The last revision applied to the cache ("" before the first list). */
  get resourceVersion(): string {
    return this.revision === undefined ? "" : this.revision.toString();
  }

  /** The cached node, or undefined. */
  get(name: string): Node | undefined {
    return this.items.get(name);
  }

  /**
   * Cached nodes matching a label selector (Kubernetes semantics; "" or absent = all), by name.
   * @throws InvalidArgumentError for a malformed selector.
   */
  list(labelSelector = ""): Node[] {
    const selector = this.parsed(labelSelector);
    const out: Node[] = [];
    for (const node of this.items.values()) if (matchesLabels(selector, node.metadata?.labels)) out.push(node);
    return out.sort((a, b) => compareNames(nameOf(a), nameOf(b)));
  }

  /**
   * Resolves once the cache has applied `resourceVersion` (e.g. the revision a write answered,
   * for read-your-writes). With a selector, revisions of non-matching changes are only reached
   * through the server's bookmarks. Rejects with CancelledError if the informer stops first.
   */
  waitFor(resourceVersion: string): Promise<void> {
    const target = BigInt(resourceVersion);
    if (this.revision !== undefined && this.revision >= target) return Promise.resolve();
    if (this.stopped) return Promise.reject(stoppedError());
    return new Promise((resolve, reject) => this.waiters.push({ revision: target, resolve, reject }));
  }

  private readonly onUserAbort = (): void => void this.stop();

  private async run(): Promise<void> {
    let mustList = true;
    while (!this.stopped) {
      let listedNow = false;
      if (mustList) {
        try {
          await this.relist();
        } catch (err) {
          if (this.stopped) return;
          this.report(err);
          await this.sleep(this.backoff.next(0));
          continue;
        }
        if (this.stopped) return;
        mustList = false;
        listedNow = true;
      }
      const openedAt = performance.now();
      const from = this.revision;
      let failure: unknown;
      try {
        const events = this.client.watch(
          {
            resourceVersion: this.resourceVersion,
            allowBookmarks: true,
            labelSelector: this.labelSelector,
            fieldSelector: this.fieldSelector,
          },
          { signal: this.abort.signal },
        );
        for await (const ev of events) {
          if (this.stopped) break;
          this.apply(ev);
        }
      } catch (err) {
        failure = err;
      }
      if (this.stopped) return;
      const healthyMs = performance.now() - openedAt;
      if (failure !== undefined) this.report(failure);
      if (failure instanceof OutOfRangeError) {
        // Our revision is gone from the server's history: list again at once, unless a list
        // just made was itself already too old (then wait, so that retries stay bounded).
        mustList = true;
        if (listedNow && this.revision === from) await this.sleep(this.backoff.next(healthyMs));
        continue;
      }
      // INVALID_ARGUMENT here means our revision is newer than the server's (its data was
      // replaced): as client-go does for "too large resource version", list again.
      if (failure instanceof InvalidArgumentError) mustList = true;
      // Anything else (UNAVAILABLE on shutdown or a refused connection, RESOURCE_EXHAUSTED for
      // a slow reader, a clean end): wait, then watch again from the last revision applied.
      await this.sleep(this.backoff.next(healthyMs));
    }
  }

  /** List everything, then make the cache equal to the list, reporting the difference. */
  private async relist(): Promise<void> {
    const { nodes, resourceVersion } = await this.client.listAllNodes(
      { labelSelector: this.labelSelector, fieldSelector: this.fieldSelector, limit: this.pageSize },
      { signal: this.abort.signal },
    );
    if (this.stopped) return;
    const fresh = new Map<string, Node>();
    for (const node of nodes) fresh.set(nameOf(node), node);
    for (const [name, old] of this.items) {
      const now = fresh.get(name);
      if (now === undefined || now.metadata?.uid !== old.metadata?.uid) {
        this.items.delete(name);
        this.call(() => this.handlers.onDelete?.(old));
      }
    }
    for (const [name, node] of fresh) {
      const old = this.items.get(name);
      this.items.set(name, node);
      if (old === undefined) this.call(() => this.handlers.onAdd?.(node));
      else if (old.metadata?.resourceVersion !== node.metadata?.resourceVersion) this.call(() => this.handlers.onUpdate?.(old, node));
    }
    // The list's revision stands even if lower (the server's data was replaced): the cache is the list.
    this.revision = BigInt(resourceVersion);
    if (!this.isSynced) {
      this.isSynced = true;
      this.resolveSynced();
    }
    this.wake();
  }

  private apply(ev: WatchEvent): void {
    const revision = BigInt(ev.resourceVersion);
    if (this.revision !== undefined && (revision < this.revision || (revision === this.revision && this.applied(ev)))) return;
    const name = nameOf(ev.node);
    switch (ev.type) {
      case "ADDED":
      case "MODIFIED": {
        const old = this.items.get(name);
        this.items.set(name, ev.node);
        if (old === undefined) this.call(() => this.handlers.onAdd?.(ev.node));
        else this.call(() => this.handlers.onUpdate?.(old, ev.node));
        break;
      }
      case "DELETED":
        if (this.items.delete(name)) this.call(() => this.handlers.onDelete?.(ev.node));
        break;
      case "BOOKMARK":
        break;
      default:
        return; // a type this SDK does not know vouches for nothing
    }
    this.revision = revision;
    this.wake();
  }

  /** For an event at the revision already applied: whether the cache already reflects it. */
  private applied(ev: WatchEvent): boolean {
    if (ev.type === "BOOKMARK") return true;
    const cached = this.items.get(nameOf(ev.node));
    if (ev.type === "DELETED") return cached === undefined;
    return cached?.metadata?.resourceVersion === ev.node.metadata?.resourceVersion;
  }

  private wake(): void {
    const at = this.revision;
    if (at === undefined || this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.revision <= at);
    this.waiters = this.waiters.filter((w) => w.revision > at);
    for (const w of ready) w.resolve();
  }

  /** Run a handler; one that throws is reported and does not stop the informer. */
  private call(handler: () => void): void {
    if (this.stopped) return;
    try {
      handler();
    } catch (err) {
      this.report(err);
    }
  }

  private report(err: unknown): void {
    try {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // An onError that throws has nowhere to report to.
    }
  }

  /** Wait `ms`, or less if the informer stops. */
  private sleep(ms: number): Promise<void> {
    return sleep(ms, this.abort.signal);
  }

  private parsed(text: string): LabelSelector {
    if (this.selectorMemo?.text !== text) this.selectorMemo = { text, selector: localParse(() => parseLabelSelector(text)) };
    return this.selectorMemo.selector;
  }
}

function nameOf(node: Node): string {
  return node.metadata?.name ?? "";
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function stoppedError(): CancelledError {
  return new CancelledError(status.CANCELLED, "the informer was stopped");
}

/** Selectors are parsed here with the server's parser; a bad one is the caller's INVALID_ARGUMENT. */
function localParse<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof InvalidError) throw new InvalidArgumentError(status.INVALID_ARGUMENT, err.message);
    throw err;
  }
}
