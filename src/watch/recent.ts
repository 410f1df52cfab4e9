/**
 * The node changes the watch cache fanned out most recently (Kubernetes' watch cache keeps such
 * a window for the same reason): a watcher that resumes from a recent revision — above all one
 * whose replica died and that reconnected to this one — is caught up from memory. The window
 * keeps changes, not their events (WatchCache drops those once a change is fanned out): a replay
 * makes them again, shared by every watcher replaying the change (encoded once).
 *
 * The alternative is a replay of store history per watcher. On etcd that is a watch of the
 * store's whole key space from the watcher's revision (Leases included: most revisions are
 * renewals), one per watcher; thousands of watchers resuming at once after a failover would
 * each fetch and decode the same history. With the window, only watchers older than it do.
 *
 * Contract: `since(R)` answers every held change above R, in revision order, only when the
 * window holds every node change above R (R at or above its floor); otherwise undefined and the
 * caller replays the store. Changes of one revision are held or dropped together.
 */
import type { Change } from "./catchup.js";

export class RecentChanges {
  private changes: Change[] = [];
  private head = 0;
  /** Every node change above this revision is held; undefined until the first reset. */
  private floor: number | undefined;

  constructor(private readonly capacity: number) {}

  /** The cache's contents are complete at `revision` (loaded or relisted): hold from there on. */
  reset(revision: number): void {
    this.changes = [];
    this.head = 0;
    this.floor = this.capacity > 0 ? revision : undefined;
  }

  /** A change the cache fanned out (ignored unless it is above the floor: relist diffs are not history). */
  add(change: Change): void {
    if (this.floor === undefined || change.revision <= this.floor) return;
    this.changes.push(change);
    if (this.changes.length - this.head <= this.capacity) return;
    // Drop the oldest revision whole, then compact the array now and then.
    const dropped = this.changes[this.head]!.revision;
    while (this.head < this.changes.length && this.changes[this.head]!.revision === dropped) this.changes[this.head++] = undefined as never;
    this.floor = dropped;
    if (this.head > 1024 && this.head * 2 > this.changes.length) {
      this.changes = this.changes.slice(this.head);
      this.head = 0;
    }
  }

  /** Every change above `revision`, oldest first, or undefined if some may be missing. */
  since(revision: number): Change[] | undefined {
    if (this.floor === undefined || revision < this.floor) return undefined;
    // The first held change above `revision` (binary search: revisions only grow).
    let lo = this.head;
    let hi = this.changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.changes[mid]!.revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return this.changes.slice(lo);
  }
}
