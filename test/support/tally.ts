/** A number that only goes up, and promises of it reaching a value: tests wait on events, never poll. */
export class Tally {
  value = 0;
  private waiters: { at: number; resolve: () => void }[] = [];

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

  /** Resolves once the value is at least `at`. */
  reach(at: number): Promise<void> {
    return at <= this.value ? Promise.resolve() : new Promise((resolve) => this.waiters.push({ at, resolve }));
  }
}
