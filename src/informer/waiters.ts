/**
 * Promises waiting for a revision to be reached: the one mechanism behind every `waitFor`
 * (informers, the watch cache, the SDK's read-your-writes).
 */
export class RevisionWaiters {
  private waiters: { revision: number; resolve: (reached: boolean) => void }[] = [];
  private closed = false;

  /** Resolves true once `reach(r)` is called with r ≥ revision; false if closed first. */
  wait(revision: number, current: number): Promise<boolean> {
    if (current >= revision) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => this.waiters.push({ revision, resolve }));
  }

  reach(revision: number): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.revision <= revision);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > revision);
    for (const w of ready) w.resolve(true);
  }

  /** Resolve every waiter with false, now and from now on. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.resolve(false);
  }
}
