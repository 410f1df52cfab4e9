/**
 * Informer: a local, always-current cache of Nodes kept in step with the server over gRPC: the
 * server's own Reflector (src/informer/reflector.ts) over a gRPC ListerWatcher — list (paged),
 * watch from the list's revision, relist when that revision is no longer retained
 * (OUT_OF_RANGE, or INVALID_ARGUMENT for a revision newer than the server's), and on any other
 * failure back off with jitter (800 ms → 30 s, reset after 2 min of healthy watching) and watch
 * again from the last revision applied.
 *
 * Contract: handlers run synchronously, one at a time, in revision order; every change the
 * server reports after the first list reaches them once, none twice (an event at or below the
 * revision already applied is dropped). After a relist they see exactly the difference between
 * the old cache and the list: deletes first (names gone, or replaced by a new incarnation with
 * another uid), then adds and updates in the list's order; unchanged nodes are not reported.
 * No handler runs after stop() returns. Cached nodes are shared: do not mutate them.
 */
import type { BackoffOptions } from "../backoff.js";
import { status } from "@grpc/grpc-js";
import type { Clock } from "../clock.js";
import { InvalidError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { type LabelSelector, matchesLabels, parseFieldSelector, parseLabelSelector } from "../validation/selector.js";
import { Reflector } from "../informer/reflector.js";
import type { NodeClient } from "./client.js";
import { CancelledError, InvalidArgumentError } from "./errors.js";
import { nodeSource } from "./node-source.js";

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
  /** Time for the backoff waits (default: the system clock). */
  clock?: Clock;
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

  private readonly reflector: Reflector<Node>;
  private readonly userSignal: AbortSignal | undefined;
  private selectorMemo: { text: string; selector: LabelSelector } | undefined;

  constructor(opts: InformerOptions) {
    const labelSelector = opts.labelSelector ?? "";
    const fieldSelector = opts.fieldSelector ?? "";
    localParse(() => parseLabelSelector(labelSelector));
    localParse(() => parseFieldSelector(fieldSelector));
    this.reflector = new Reflector<Node>({
      source: nodeSource({ client: opts.client, labelSelector, fieldSelector, pageSize: opts.pageSize ?? DEFAULT_PAGE_SIZE }),
      clock: opts.clock,
      backoff: opts.backoff,
      onError: opts.onError,
      // A node deleted and created again under its name is another node: delete, then add.
      incarnation: (node) => node.metadata?.uid ?? "",
    });
    this.reflector.subscribe({
      onAdd: (_, node) => opts.onAdd?.(node),
      onUpdate: (_, node, old) => opts.onUpdate?.(old, node),
      onDelete: (_, old, __, last) => opts.onDelete?.(last ?? old),
    });
    this.synced = this.reflector.synced().then(() => {
      if (!this.reflector.hasSynced) throw stoppedError();
    });
    // A caller who never awaits `synced` must not get an unhandled rejection on stop().
    this.synced.catch(() => {});
    this.userSignal = opts.signal;
    if (this.userSignal?.aborted) void this.stop();
    else this.userSignal?.addEventListener("abort", this.onUserAbort, { once: true });
  }

  /** Start listing and watching in the background. Idempotent; does nothing once stopped. */
  start(): void {
    void this.reflector.start();
  }

  /**
   * Stop: abort the in-flight list or watch and any backoff wait. No handler runs after this
   * returns; the promise resolves once the background loop has ended. Idempotent.
   */
  stop(): Promise<void> {
    this.userSignal?.removeEventListener("abort", this.onUserAbort);
    return this.reflector.stop();
  }

  /** Whether the first full list is in the cache. */
  get hasSynced(): boolean {
    return this.reflector.hasSynced;
  }

  /** The last revision applied to the cache ("" before the first list). */
  get resourceVersion(): string {
    return this.reflector.hasSynced ? String(this.reflector.revision) : "";
  }

  /** The cached node, or undefined. */
  get(name: string): Node | undefined {
    return this.reflector.get(name);
  }

  /**
   * Cached nodes matching a label selector (Kubernetes semantics; "" or absent = all), by name.
   * @throws InvalidArgumentError for a malformed selector.
   */
  list(labelSelector = ""): Node[] {
    const selector = this.parsed(labelSelector);
    const out: Node[] = [];
    for (const [, node] of this.reflector.entries()) if (matchesLabels(selector, node.metadata?.labels)) out.push(node);
    return out.sort((a, b) => compareNames(nameOf(a), nameOf(b)));
  }

  /**
   * Resolves once the cache has applied `resourceVersion` (e.g. the revision a write answered,
   * for read-your-writes). With a selector, revisions of non-matching changes are only reached
   * through the server's bookmarks. Rejects with CancelledError if the informer stops first.
   */
  async waitFor(resourceVersion: string): Promise<void> {
    if (!(await this.reflector.waitFor(Number(resourceVersion)))) throw stoppedError();
  }

  private readonly onUserAbort = (): void => void this.stop();

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
