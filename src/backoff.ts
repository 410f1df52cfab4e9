/**
 * Exponential backoff with jitter, reset after a stretch of health (client-go's reflector
 * backoff: 800 ms → 30 s, reset after 2 minutes). One instance per retrying loop.
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** A success that lasted this long resets the delay to initialMs. */
  resetAfterMs?: number;
  /** Each delay is scaled by a random factor in [1 − jitter, 1 + jitter]. */
  jitter?: number;
  now?: () => number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly resetAfterMs: number;
  private readonly jitter: number;
  private readonly now: () => number;
  private current: number;
  private healthySince: number | undefined;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 800;
    this.maxMs = opts.maxMs ?? 30_000;
    this.resetAfterMs = opts.resetAfterMs ?? 120_000;
    this.jitter = opts.jitter ?? 0.2;
    this.now = opts.now ?? Date.now;
    this.current = this.initialMs;
  }

  /** The thing is working again (a watch started, a list succeeded). */
  healthy(): void {
    this.healthySince ??= this.now();
  }

  /** It failed: the delay to wait before the next attempt. */
  next(): number {
    if (this.healthySince !== undefined && this.now() - this.healthySince >= this.resetAfterMs) this.current = this.initialMs;
    this.healthySince = undefined;
    const delay = this.current * (1 - this.jitter + Math.random() * 2 * this.jitter);
    this.current = Math.min(this.current * 2, this.maxMs);
    return Math.round(delay);
  }
}
