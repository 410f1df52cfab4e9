/**
 * Time is injected: the registry stamps objects, the controllers judge health and every retry
 * loop backs off through a Clock, so tests step a fake one instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Call `fn` once `ms` have passed on this clock; the returned function cancels it. A pending
   * timer of the system clock keeps the process alive, as setTimeout does (an agent between two
   * renewals has nothing else to): whoever arms one cancels it when it stops.
   */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** Call `fn` every `ms` on `clock` until the returned function is called. */
export function every(clock: Clock, ms: number, fn: () => void): () => void {
  let cancel = (): void => {};
  let stopped = false;
  const arm = (): void => {
    cancel = clock.setTimer(() => {
      if (stopped) return;
      arm();
      fn();
    }, ms);
  };
  arm();
  return () => {
    stopped = true;
    cancel();
  };
}

/** Wait `ms` on `clock`, or less if the signal aborts (resolves either way: the caller checks the signal). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const cancel = clock.setTimer(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** A clock tests set and advance by hand; its timers fire as `advance` passes their time. */
export class FakeClock implements Clock {
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  constructor(private ms = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.ms;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.ms + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Timers armed and not yet fired or cancelled (a stopped component must leave none). */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Move time forward, firing every timer that falls due on the way, in time order. */
  advance(ms: number): void {
    const end = this.ms + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.ms = Math.max(this.ms, due.at);
      due.fn();
    }
    this.ms = end;
  }

  /** Set the time without firing timers (a wall-clock jump). */
  set(ms: number): void {
    this.ms = ms;
  }
}
