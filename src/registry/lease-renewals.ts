/**
 * LeaseRenewals: node Lease renewals made durable by checkpoint, as etcd's lessor keeps lease
 * expiry in memory and checkpoints it instead of writing a raft entry per keep-alive.
 *
 * The contract (service.proto's RenewLease and Heartbeat, and the README, say it to clients):
 * - A renewal is a renewal of a Lease this server knows (it wrote or read it) that changes only
 *   renew_time. It is applied here, in memory, and answered at once. On this server GetLease and
 *   ListLeases show it at once (`overlay`), and the node lifecycle controller in its next pass
 *   (`latestRenewMs`, see renew-times.ts). A new Lease, or a change of holder or duration, is not a
 *   renewal: NodeRegistry writes it durably and answers after the commit (`written`).
 * - Checkpoints. Every `intervalMs` (C) a checkpoint writes each Lease renewed since the last
 *   one, once, with its latest renew_time: one compare-and-swap transaction per up to `chunkOps`
 *   Leases (each compared on its own revision; etcd gets one Txn per chunk, within its default
 *   --max-txn-ops of 128), sent a slice of `sliceOps` Leases per event-loop turn with at most
 *   two slices in flight (SQLite commits what is queued in one group commit). Watches, informers and other servers see a renewal when the
 *   checkpoint that writes it commits: with S = 0 within C plus that commit while checkpoints
 *   keep up, and never later than C + L plus a commit before renewals are held back.
 * - Holding back. While a checkpoint has been in flight for L (`lagLimitMs`, at least C) or
 *   longer, or after one failed until one succeeds, a renewal is not answered at once: it waits
 *   for the checkpoint that writes it and is answered with the Lease as written (or with that
 *   checkpoint's error). So a slow or unreachable store slows renewals down as it slows durable
 *   writes, instead of letting acknowledged renewals pile up where no other server sees them.
 *   Below L a slow checkpoint only makes the next one larger (each Lease still written once),
 *   which is what lets a store that commits large batches more cheaply per Lease catch up.
 * - A crash loses exactly the renewals answered at once since their Lease was last written: at
 *   most those answered since the start of the last checkpoint that completed (it writes each
 *   Lease's latest renewal when it reaches the Lease), at most 2 × L of them (the next
 *   checkpoint starts within max(C, L) of it, and runs for less than L before renewals are held
 *   back). A graceful stop writes them all (`stop`).
 * - C = 0: every renewal waits for its checkpoint (renewals are durable writes), and the next
 *   checkpoint starts as soon as the previous one ends.
 * - One Lease renewed many times between two checkpoints is one write; renewals of one Lease
 *   that wait are answered in the order they came (they ride along in one write).
 * - Write interval S (`writeIntervalMs`, per Lease at most half its duration; 0 = off). A
 *   checkpoint leaves a renewal for a later one when it falls in the same write period of its
 *   Lease (periods of length S, their start spread over S by the Lease's name) as the stored
 *   renew time, is younger than S, and the stored renew time is younger than 1.25 × S; else it
 *   writes it. So a Lease renewed every I ≤ S/2 is written about once per S instead of once per
 *   I; whatever I, while it is renewed its stored renew time (what watches, informers and other
 *   servers see) is written again at least every 1.25 × S + C and never trails the latest
 *   renewal answered by 1.25 × S + C or more, while checkpoints keep up (+ L when they lag). A
 *   crash loses, besides the renewals above, the renewals left for later: the stored renew time
 *   trails the last renewal answered by less than 1.25 × S + 2 × L.
 *
 * Conflicts. A failed compare (another server wrote the Lease, or deleted its node) costs the
 * chunk a retry without the Leases that changed; each of those is rebased on what is stored: a
 * deleted Lease is forgotten (its waiting renewals fail NotFound), a Lease renewed later elsewhere
 * is taken as it is, otherwise this server's renew time is written over the stored Lease (whose
 * holder and duration stay) at the next checkpoint.
 */
import type { Clock } from "../clock.js";
import { NotFoundError, UnavailableError } from "../errors.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import { decodeLease, withRevision } from "../model/codec.js";
import { storedLeaseBytes } from "../model/lease-bytes.js";
import { leaseKey } from "../model/keys.js";
import { formatRevision } from "../model/revision.js";
import type { KeyValue, Store, TxnResult } from "../store/store.js";
import type { Renewal } from "./leases.js";

export interface LeaseRenewalsOptions {
  store: Store;
  clock: Clock;
  /** C, ms (0: renewals are durable writes). */
  intervalMs: number;
  /**
   * L, ms: renewals are held back while a checkpoint has been in flight this long (default C;
   * never less than C). A longer L lets checkpoints grow (and so commit more Leases per write)
   * when the store is briefly slower than the renewals, at the price of a longer crash window.
   */
  lagLimitMs?: number;
  /**
   * S, ms: the longest a Lease's stored renew time may trail the renewals answered for it, beyond
   * the checkpoint (default 0: every renewal is written by the next checkpoint). Each Lease uses
   * min(S, half its duration). Ignored when C = 0.
   */
  writeIntervalMs?: number;
  /** Leases per checkpoint transaction (default 128: etcd's default --max-txn-ops). */
  chunkOps?: number;
  /** Leases a checkpoint builds and sends per event-loop turn (default 4 × chunkOps), two such slices in flight at most. */
  sliceOps?: number;
  /** A checkpoint failed (its Leases are written by the next one). */
  onError?: (err: Error) => void;
  /** A checkpoint ended: Leases written, transactions, seconds taken, renewals that had waited for it. */
  onCheckpoint?: (c: CheckpointStats) => void;
}

export interface CheckpointStats {
  leases: number;
  txns: number;
  seconds: number;
  /** Renewals answered by this checkpoint (they had waited for it: held back, or C = 0). */
  waited: number;
}

/** A renewal waiting for the checkpoint that writes it. */
interface Waiter {
  at: number;
  resolve(lease: Lease): void;
  reject(err: Error): void;
}

/**
 * What this server knows of one Lease. A renewal, and a checkpoint's write of it, change numbers
 * on it in place and allocate nothing that outlives them: at 100,000 nodes an object kept per
 * renewal or per checkpointed Lease until the next one (seconds later) is promoted to the old
 * generation and makes its garbage collections run every few seconds. The Lease as stored is
 * `base` with `storedMs` and `modRevision` put in (storedLease), built when something reads it.
 */
interface Entry {
  /** The Lease's name, the string `entries` is keyed by (the set of pending Leases holds it, not a request's copy). */
  name: string;
  /**
   * The Lease as last written durably or read (resource_version set): holder, duration and the
   * rest are the stored Lease's; its renew time and resource_version may be older, when a
   * checkpoint wrote it since (`storedMs`, `modRevision`).
   */
  base: Lease;
  /** The stored renew time (ms; 0: none). */
  storedMs: number;
  /** The stored Lease's revision. */
  modRevision: number;
  /** The renew time (ms) to write at the next checkpoint, later than the stored one; 0: none. */
  pending: number;
  /** The renew time (ms) of the latest renewal answered before it was written (what reads show). */
  acked: number;
  waiters: Waiter[];
  /** Where this Lease's write periods start, as a fraction of S: spread by name, so that writes spread over time. */
  phase: number;
  /** The slot of `deferred` holding it, while a checkpoint has left its renewal for later. */
  slot: number | undefined;
}

/** One Lease in a checkpoint. */
interface Item {
  name: string;
  entry: Entry;
  /** The renew time (ms) it writes. */
  renewMs: number;
  modRevision: number;
  value: Uint8Array;
}

export class LeaseRenewals {
  private readonly entries = new Map<string, Entry>();
  /** Leases with a renewal not yet written, in the order they were first renewed (but those in `deferred`). */
  private dirty = new Set<string>();
  /**
   * Leases whose renewal a checkpoint left for later (write spacing), by the slot of C in which,
   * renewed no further, they may be written (see deferUntil): a checkpoint looks at the slots
   * that have come instead of at every deferred Lease each time (at 100,000 nodes renewing every
   * 10 s, most of them). A new renewal of one moves it back to `dirty`.
   */
  private readonly deferred = new Map<number, Set<string>>();
  private readonly chunkOps: number;
  private readonly sliceOps: number;
  private readonly lagLimitMs: number;
  /** The checkpoint in flight, and when it started (clock ms). */
  private running: Promise<void> | undefined;
  private runningSince = 0;
  /** The last checkpoint failed; renewals are held back until one succeeds. */
  private failed = false;
  /** A checkpoint is due as soon as the one in flight ends. */
  private due = false;
  private cancelTimer: (() => void) | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private stopped = false;
  /** What the checkpoint in flight has done so far. */
  private stats: CheckpointStats = { leases: 0, txns: 0, seconds: 0, waited: 0 };

  constructor(private readonly o: LeaseRenewalsOptions) {
    this.chunkOps = o.chunkOps ?? 128;
    this.sliceOps = Math.max(1, o.sliceOps ?? 4 * this.chunkOps);
    this.lagLimitMs = Math.max(o.intervalMs, o.lagLimitMs ?? 0);
  }

  /** Checkpoint every C from now on (C > 0; with C = 0 a checkpoint starts whenever renewals wait). */
  start(): void {
    if (this.o.intervalMs > 0 && !this.cancelTimer && !this.stopped) this.arm();
  }

  /** Stop checkpointing and write every renewal answered so far. Later renewals are durable writes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    await this.running?.catch(() => undefined);
    this.takeDeferred(Infinity, this.dirty);
    if (this.dirty.size > 0) await this.checkpoint();
  }

  /**
   * Renew in memory when this is a renewal (see the contract): answers the renewed Lease — itself
   * when answered at once, a promise of the Lease as written while renewals are held back — or
   * undefined when it must be a durable write (unknown Lease, a change of holder or duration, or
   * stopped).
   */
  renew(name: string, renewal: Renewal, now: number): Lease | Promise<Lease> | undefined {
    const e = this.renewable(name, renewal);
    if (!e) return undefined;
    // Waiting renewals of this Lease go first: answers keep the order renewals came in.
    if (!this.holdingBack() && e.waiters.length === 0) return this.answer(e, now);
    const renewTime = this.apply(e, now);
    if (this.o.intervalMs === 0 && !this.running) this.immediate ??= setImmediate(this.runDue);
    else this.due ||= this.o.intervalMs === 0;
    return new Promise((resolve, reject) => e.waiters.push({ at: renewTime, resolve, reject }));
  }

  /** renew() when it answers at once; otherwise undefined, and nothing done. */
  renewAtOnce(name: string, renewal: Renewal, now: number): Lease | undefined {
    const e = this.renewable(name, renewal);
    if (!e || e.waiters.length > 0 || this.holdingBack()) return undefined;
    return this.answer(e, now);
  }

  /** The entry of a Lease this renewal may renew in memory (known, same holder and duration, not stopped). */
  private renewable(name: string, renewal: Renewal): Entry | undefined {
    const e = this.entries.get(name);
    const spec = e?.base.spec;
    if (!e || !spec || this.stopped) return undefined;
    if (renewal.holderIdentity !== "" && renewal.holderIdentity !== spec.holderIdentity) return undefined;
    if (renewal.leaseDurationSeconds !== 0 && renewal.leaseDurationSeconds !== spec.leaseDurationSeconds) return undefined;
    return e;
  }

  /** Renew in memory, pending for the next checkpoint: the renew time (ms). */
  private apply(e: Entry, now: number): number {
    // Time never runs backwards for a Lease (a clock step back keeps the later renew time).
    const renewTime = Math.max(now, e.pending || e.storedMs);
    e.pending = renewTime;
    this.undefer(e);
    this.dirty.add(e.name);
    return renewTime;
  }

  /** Apply and answer at once: reads see it now, the lifecycle controller in its next pass. */
  private answer(e: Entry, now: number): Lease {
    const renewTime = this.apply(e, now);
    e.acked = renewTime;
    return leaseAt(e, renewTime);
  }

  /** Whether this server knows the Lease `name` (wrote or read it). */
  knows(name: string): boolean {
    return this.entries.has(name);
  }

  /** The Lease this server knows for `name`: the latest state, as the next write must start from. */
  known(name: string): { lease: Lease; modRevision: number } | undefined {
    const e = this.entries.get(name);
    return e && { lease: leaseAt(e, e.pending || e.storedMs), modRevision: e.modRevision };
  }

  /**
   * A durable write (or a read) of the Lease at `kv`: the next renewal starts from it. Renewals
   * it covers (not later than its renew time) are written with it; their waiters are answered.
   */
  written(name: string, lease: Lease, kv: KeyValue): Lease {
    const stored = withRevision(lease, kv);
    let e = this.entries.get(name);
    if (!e) {
      e = { name, base: stored, storedMs: renewMs(stored), modRevision: kv.modRevision, pending: 0, acked: 0, waiters: [], phase: phaseOf(name), slot: undefined };
      this.entries.set(name, e);
      return stored;
    }
    if (kv.modRevision < e.modRevision) return stored;
    e.base = stored;
    e.storedMs = renewMs(stored);
    e.modRevision = kv.modRevision;
    this.covered(name, e);
    return stored;
  }

  /**
   * The node and its Lease are gone (deleted at `revision`, if known): forget the Lease unless
   * it was written again since; renewals waiting for it fail NotFound.
   */
  forget(name: string, revision = Infinity): void {
    const e = this.entries.get(name);
    if (!e || e.modRevision >= revision) return;
    this.entries.delete(name);
    this.dirty.delete(name);
    this.undefer(e);
    const err = new NotFoundError("lease", `kube-node-lease/${name}`, "its node was deleted");
    for (const w of e.waiters.splice(0)) w.reject(err);
  }

  /** A stored Lease as a read on this server shows it: with the renewal this server answered since, if any. */
  overlay(lease: Lease): Lease {
    const name = lease.metadata?.name;
    const acked = name === undefined ? 0 : (this.entries.get(name)?.acked ?? 0);
    const spec = lease.spec;
    if (!spec || acked <= (spec.renewTime?.getTime() ?? 0)) return lease;
    return { ...lease, spec: { ...spec, renewTime: new Date(acked) } };
  }

  /**
   * The latest renew time (ms) this server knows for `name`: the latest it answered, or the one
   * it last wrote or read if later (undefined: none). A checkpointed renewal stays here after its
   * write, so a reader that also follows the store (renew-times.ts) sees it however far its
   * informer lags behind that write.
   */
  latestRenewMs(name: string): number | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    const latest = Math.max(e.acked, e.storedMs);
    return latest > 0 ? latest : undefined;
  }

  /** Renewals not yet written (a metric). */
  get pendingCount(): number {
    let n = this.dirty.size;
    for (const names of this.deferred.values()) n += names.size;
    return n;
  }

  /** Write every renewal now (and wait for the checkpoint in flight first). */
  async checkpoint(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.write().finally(() => {
      this.running = undefined;
      if (this.due && !this.stopped) {
        this.due = false;
        this.immediate ??= setImmediate(this.runDue);
      }
    });
    return this.running;
  }

  /**
   * Resolves once no checkpoint is in flight. Code that steps a fake clock (the controller tests)
   * waits here before each step, so that checkpoints keep up with its time as they keep up with
   * real time; otherwise fake time runs ahead of real commits and renewals are held back.
   */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Whether renewals wait for their checkpoint (see the contract). */
  private holdingBack(): boolean {
    if (this.o.intervalMs === 0 || this.failed) return true;
    return this.running !== undefined && this.o.clock.now() - this.runningSince >= this.lagLimitMs;
  }

  private arm(): void {
    this.cancelTimer = this.o.clock.setTimer(() => {
      this.cancelTimer = undefined;
      if (this.stopped) return;
      this.arm();
      if (this.running) this.due = true;
      else if (this.dirty.size > 0 || this.deferredDue(this.o.clock.now())) void this.checkpoint().catch(() => undefined);
    }, this.o.intervalMs);
  }

  private readonly runDue = (): void => {
    this.immediate = undefined;
    if (!this.running && (this.dirty.size > 0 || this.deferredDue(this.o.clock.now()))) void this.checkpoint().catch(() => undefined);
  };

  /**
   * One checkpoint: every Lease renewed by now (each with its latest renewal when its slice is
   * built, so renewals answered meanwhile ride along), in slices of chunks.
   */
  private async write(): Promise<void> {
    this.runningSince = this.o.clock.now();
    const started = performance.now();
    this.stats = { leases: 0, txns: 0, seconds: 0, waited: 0 };
    const names = this.dirty;
    this.dirty = new Set();
    const now = this.o.clock.now();
    this.takeDeferred(now, names);
    // Built and sent a slice at a time, each slice in a turn of its own, with at most two in
    // flight: the turns that build, send and settle a checkpoint's Leases stay short (one turn for
    // 5,000 Leases blocked this thread for 100–300 ms), however many it writes.
    const slices: Array<{ done: Promise<PromiseSettledResult<void>[]>; settled: boolean }> = [];
    let slice: Item[] = [];
    let sent = 0;
    const send = (): void => {
      const chunks: Item[][] = [];
      for (let i = 0; i < slice.length; i += this.chunkOps) chunks.push(slice.slice(i, i + this.chunkOps));
      const s = { done: Promise.allSettled(chunks.map((c) => this.writeChunk(c))), settled: false };
      void s.done.then(() => (s.settled = true));
      slices.push(s);
      sent += slice.length;
      slice = [];
    };
    for (const name of names) {
      if (slice.length === this.sliceOps) {
        send();
        // The next slice in a later turn: after the one before this (still in flight: its reply
        // comes in a turn of its own), or after this turn.
        const older = slices.at(-2);
        if (older && !older.settled) await older.done;
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
      // Looked up when its slice is built: a renewal, a write or a deletion may have come since.
      const entry = this.entries.get(name);
      if (!entry?.pending) continue;
      const until = this.deferUntil(entry, now);
      if (until !== undefined) {
        this.defer(entry, until);
        continue;
      }
      slice.push({ name, entry, renewMs: entry.pending, modRevision: entry.modRevision, value: storedLeaseBytes(renewedLease(entry.base, entry.pending)) });
    }
    if (slice.length > 0) send();
    const outcomes = (await Promise.all(slices.map((s) => s.done))).flat();
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    this.failed = failure !== undefined;
    if (sent > 0) this.o.onCheckpoint?.({ ...this.stats, seconds: (performance.now() - started) / 1000 });
    if (failure) {
      const err = failure.reason instanceof Error ? failure.reason : new UnavailableError(String(failure.reason));
      this.o.onError?.(err);
      throw err;
    }
  }

  /**
   * Whether this checkpoint may leave the Lease's pending renewal for a later one (write spacing),
   * and until when: nobody waits for it, the server is not stopping, and it falls in the same
   * write period of the Lease as the stored renew time and is younger than the period. A Lease
   * renewed every interval I is then written about once per S (S ≥ I), never trailing by S or
   * more. Renewed no further, it stays left for later until the time answered (then it is S old,
   * or the stored renew time 1.25 × S old); undefined: write it now.
   */
  private deferUntil(e: Entry, now: number): number | undefined {
    if (this.stopped || this.o.intervalMs === 0 || e.waiters.length > 0) return undefined;
    const spacing = Math.min(this.o.writeIntervalMs ?? 0, (e.base.spec?.leaseDurationSeconds ?? 0) * 500);
    if (spacing <= 0) return undefined;
    const pending = e.pending;
    const stored = e.storedMs;
    // A stale pending renewal (its node went quiet), or a stored one 1.25 × S old (a node renewing
    // at an interval close to S would otherwise skip a period and leave a gap of almost S + I).
    const until = Math.min(pending + spacing, stored + STALE_STORED * spacing);
    if (now >= until) return undefined;
    const period = (t: number): number => Math.floor((t + e.phase * spacing) / spacing);
    return period(pending) === period(stored) ? until : undefined;
  }

  /** Leave a renewal for the first checkpoint at or after `until` (a slot of C: at most one look too early). */
  private defer(e: Entry, until: number): void {
    const slot = Math.floor(until / this.o.intervalMs);
    let names = this.deferred.get(slot);
    if (!names) this.deferred.set(slot, (names = new Set()));
    names.add(e.name);
    e.slot = slot;
    // Renewed again before the checkpoint reached it: left for later all the same (the latest renewal).
    this.dirty.delete(e.name);
  }

  private undefer(e: Entry): void {
    if (e.slot === undefined) return;
    const names = this.deferred.get(e.slot);
    names?.delete(e.name);
    if (names?.size === 0) this.deferred.delete(e.slot);
    e.slot = undefined;
  }

  /** Move the deferred renewals whose slot has come by `now` into `into`. */
  private takeDeferred(now: number, into: Set<string>): void {
    for (const [slot, names] of this.deferred) {
      if (slot * this.o.intervalMs > now) continue;
      this.deferred.delete(slot);
      for (const name of names) {
        const e = this.entries.get(name);
        if (e) e.slot = undefined;
        into.add(name);
      }
    }
  }

  private deferredDue(now: number): boolean {
    for (const slot of this.deferred.keys()) if (slot * this.o.intervalMs <= now) return true;
    return false;
  }

  /** Write one chunk; on a failed compare, rebase the Leases that changed and retry the others. */
  private async writeChunk(chunk: Item[]): Promise<void> {
    let items = chunk;
    while (items.length > 0) {
      let res: TxnResult;
      this.stats.txns++;
      try {
        const keys = items.map((i) => leaseKey(i.name));
        res = await this.o.store.txn({
          compare: items.map((i, k) => ({ key: keys[k]!, modRevision: i.modRevision })),
          ops: items.map((i, k) => ({ type: "put" as const, key: keys[k]!, value: i.value })),
        });
      } catch (err) {
        this.unwritten(items, err instanceof Error ? err : new Error(String(err)));
        throw err;
      }
      if (res.succeeded) {
        items.forEach((i, k) => this.settle(i, res.results[k]!));
        this.stats.leases += items.length;
        return;
      }
      const current = res.current;
      const same: Item[] = [];
      items.forEach((i, k) => {
        if ((current[k]?.modRevision ?? 0) === i.modRevision) same.push(i);
        else this.rebase(i, current[k]);
      });
      items = same;
    }
  }

  /** The checkpoint wrote `item` at `kv`. */
  private settle(item: Item, kv: KeyValue): void {
    const e = this.entries.get(item.name);
    if (e !== item.entry || kv.modRevision < e.modRevision) return;
    // base stays: the write changed only the renew time (and the revision) of what it holds.
    e.storedMs = item.renewMs;
    e.modRevision = kv.modRevision;
    this.covered(item.name, e);
  }

  /** Someone else changed the Lease since `item` was read: start again from what is stored. */
  private rebase(item: Item, kv: KeyValue | undefined): void {
    const e = this.entries.get(item.name);
    // Replaced or rewritten here meanwhile (a durable write of this server): nothing to undo.
    if (e !== item.entry || e.modRevision !== item.modRevision) return;
    if (!kv) {
      this.forget(item.name);
      return;
    }
    const stored = decodeLease(kv);
    e.base = stored;
    e.storedMs = renewMs(stored);
    e.modRevision = kv.modRevision;
    if (e.pending > e.storedMs && stored.spec) {
      // Still pending: the next checkpoint writes this renew time over the stored Lease.
      this.dirty.add(e.name);
    } else {
      this.covered(item.name, e);
    }
  }

  /** The stored Lease changed: drop what it covers, answer the waiters it covers. */
  private covered(name: string, e: Entry): void {
    const at = e.storedMs;
    // A stored Lease without a spec is no renewal's base (renewable() refuses it): nothing pends.
    if (e.pending && (e.pending <= at || !e.base.spec)) {
      e.pending = 0;
      this.dirty.delete(name);
      this.undefer(e);
    }
    if (e.acked <= at) e.acked = 0;
    let n = 0;
    while (n < e.waiters.length && e.waiters[n]!.at <= at) n++;
    if (n > 0) {
      const stored = storedLease(e);
      for (const w of e.waiters.splice(0, n)) w.resolve(stored);
    }
    this.stats.waited += n;
  }

  /** A chunk could not be written: its Leases go to the next checkpoint; the renewals it carried that wait for it fail. */
  private unwritten(items: Item[], err: Error): void {
    for (const i of items) {
      const e = this.entries.get(i.name);
      if (e !== i.entry || !e.pending) continue;
      this.dirty.add(i.name);
      const carried = i.renewMs;
      let n = 0;
      while (n < e.waiters.length && e.waiters[n]!.at <= carried) n++;
      for (const w of e.waiters.splice(0, n)) w.reject(err);
    }
  }
}

/** A Lease's renew time in ms (0: none). */
function renewMs(lease: Lease): number {
  return lease.spec?.renewTime?.getTime() ?? 0;
}

/** The Lease as stored: `e.base` at `e.modRevision`, renewed at `e.storedMs`. */
function storedLease(e: Entry): Lease {
  return leaseAt(e, e.storedMs);
}

/**
 * `e`'s Lease at its stored revision, renewed at `ms` (`e.base` itself when that is it). Once a
 * checkpoint wrote the Lease, each answer copies base's metadata with the resource_version put in
 * (young garbage, instead of a copy kept per write); the answers' encoders cache the metadata's
 * bytes by its owner references, which copies share.
 */
function leaseAt(e: Entry, ms: number): Lease {
  const base = e.base;
  const stored = base.metadata?.resourceVersion === formatRevision(e.modRevision) ? base : withRevision(base, e);
  return ms === renewMs(base) ? stored : renewedLease(stored, ms);
}

/** `stored` renewed at `ms` (its metadata shared: the answers' encoders cache its bytes by it). */
function renewedLease(stored: Lease, ms: number): Lease {
  return { ...stored, spec: { ...stored.spec!, renewTime: new Date(ms) } };
}

/** A Lease whose stored renew time is this many write intervals old is written at the next checkpoint. */
const STALE_STORED = 1.25;

/** A fraction in [0, 1) from the Lease's name (FNV-1a): where its write periods start. */
export function phaseOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}
