/**
 * Exponential backoff with jitter, reset after a long healthy run — client-go's reflector
 * backoff (800 ms → 30 s, reset after 2 minutes). One instance per retrying loop.
 */
export interface BackoffOptions {
  /** First retry delay's scale (default 800 ms). */
  initialMs?: number;
  /** Longest delay (default 30 s). */
  maxMs?: number;
  /** A watch that ran this long before failing resets the delay to the first step (default 2 min). */
  resetAfterMs?: number;
}

/**
 * Retry delays: exponential with jitter, capped, reset after a long healthy run (client-go's
 * exponential backoff manager). Retry n waits a uniformly random time in [c/2, c] where
 * c = min(maxMs, initialMs·2^(n+1)): 800–1600 ms first, then doubling, 15–30 s at the cap.
 */
export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly resetAfterMs: number;
  private step = 0;

  constructor(
    opts: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.initialMs = opts.initialMs ?? 800;
    this.maxMs = opts.maxMs ?? 30_000;
    this.resetAfterMs = opts.resetAfterMs ?? 120_000;
  }

  /** The delay before the next retry; `healthyMs` is how long the attempt that failed ran well. */
  next(healthyMs: number): number {
    if (healthyMs >= this.resetAfterMs) this.step = 0;
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** (this.step + 1));
    if (ceiling < this.maxMs) this.step++;
    return ceiling / 2 + this.random() * (ceiling / 2);
  }
}
