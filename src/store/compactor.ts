/**
 * Compactor: the background job that discards old history while keeping a minimum window
 * (etcd's periodic compactor, with kine's "keep at least N revisions").
 *
 * Contract: it only ever compacts to a revision R that satisfies both
 *   - R <= current - minEvents            (at least minEvents revisions stay watchable), and
 *   - R was the current revision at least minAgeMs ago (a client that listed minAgeMs ago can
 *     still watch from its list's revision),
 * and among those it takes the highest. It learns "R was current at time T" by sampling the
 * store's revision on each tick, so the age window has the granularity of the tick interval.
 *
 * Time is injected: `tick()` is public, and tests drive it with a fake clock instead of timers.
 * Errors (an unavailable store) go to `onError`; the timer never throws and the next tick retries.
 */
import type { Clock } from "../clock.js";
import type { Store } from "./store.js";

export interface CompactorOptions {
  store: Pick<Store, "currentRevision" | "compactRevision" | "compact">;
  /** Reports a failed tick (the job keeps running). */
  onError: (err: Error) => void;
  /** Only differences of `now()` matter (default: a monotonic clock). */
  clock?: Pick<Clock, "now">;
  /** Keep history at least this old (default 5 minutes). */
  minAgeMs?: number;
  /** Keep at least this many revisions of history (default 10,000). */
  minEvents?: number;
  /** How often `start()` ticks (default 30 s). */
  intervalMs?: number;
  /** Timer functions (default: the global ones, unref'd so the job never keeps a process alive). */
  timers?: Timers;
}

export interface Timers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

interface Sample {
  at: number;
  revision: number;
}

const monotonic: Pick<Clock, "now"> = { now: () => performance.now() };

const globalTimers: Timers = {
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return t;
  },
  clearInterval(handle) {
    clearInterval(handle as NodeJS.Timeout);
  },
};

export class Compactor {
  private readonly store: CompactorOptions["store"];
  private readonly onError: (err: Error) => void;
  private readonly clock: Pick<Clock, "now">;
  private readonly minAgeMs: number;
  private readonly minEvents: number;
  private readonly intervalMs: number;
  private readonly timers: Timers;
  /** Oldest first; the first one is the newest sample that is already old enough, if any. */
  private samples: Sample[] = [];
  private handle: unknown;
  private running: Promise<number | undefined> | undefined;

  constructor(opts: CompactorOptions) {
    this.store = opts.store;
    this.onError = opts.onError;
    this.clock = opts.clock ?? monotonic;
    this.minAgeMs = opts.minAgeMs ?? 5 * 60_000;
    this.minEvents = opts.minEvents ?? 10_000;
    this.intervalMs = opts.intervalMs ?? 30_000;
    this.timers = opts.timers ?? globalTimers;
  }

  /** Tick every `intervalMs` from now on (the first sample is taken at once). Idempotent. */
  start(): void {
    if (this.handle !== undefined) return;
    this.handle = this.timers.setInterval(() => void this.tick(), this.intervalMs);
    void this.tick();
  }

  /** Stop ticking and wait for a tick in progress (call before closing the store). */
  async stop(): Promise<void> {
    if (this.handle !== undefined) this.timers.clearInterval(this.handle);
    this.handle = undefined;
    await this.running;
  }

  /**
   * Sample the revision and compact as far as the window allows. Resolves with the revision
   * compacted to, or undefined if there was nothing to do or the tick failed (reported
   * through onError). Never rejects. A tick while one is running joins it.
   */
  tick(): Promise<number | undefined> {
    if (this.running) return this.running;
    const run = this.compactOnce().catch((err: unknown) => {
      this.onError(err instanceof Error ? err : new Error(String(err)));
      return undefined;
    });
    this.running = run.finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async compactOnce(): Promise<number | undefined> {
    const now = this.clock.now();
    const current = await this.store.currentRevision();
    this.samples.push({ at: now, revision: current });
    // Keep only the newest sample that is old enough, and the younger ones that will be.
    const oldEnough = this.samples.findLastIndex((s) => s.at <= now - this.minAgeMs);
    if (oldEnough < 0) return undefined;
    this.samples = this.samples.slice(oldEnough);
    const target = Math.min(this.samples[0]!.revision, current - this.minEvents);
    if (target <= 0 || target <= (await this.store.compactRevision())) return undefined;
    await this.store.compact(target);
    return target;
  }
}
