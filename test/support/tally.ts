/**
 * A number that only goes up, and promises of it reaching a value: tests wait on events, never
 * poll. Once what feeds it has failed (`fail`), every wait rejects with that reason instead of
 * hanging until the test's timeout.
 */
export class Tally {
  value = 0;
  private failed: unknown;
  private waiters: { at: number; resolve: () => void; reject: (err: unknown) => void }[] = [];

  set(v: number): void {
    if (v <= this.value) return;
    this.value = v;
    this.waiters = this.waiters.filter((w) => {
      if (w.at > this.value) return true;
      w.resolve();
      return false;
    });
  }

  add(n = 1): void {
    this.set(this.value + n);
  }

  /** It will not go up any more: every wait for a value not reached yet rejects with `err`. */
  fail(err: unknown): void {
    this.failed ??= err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** Resolves once the value is at least `at`; rejects if it failed before that. */
  reach(at: number): Promise<void> {
    if (at <= this.value) return Promise.resolve();
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => this.waiters.push({ at, resolve, reject }));
  }
}
