/**
 * LeaderElector: which replica runs the controllers, decided through a Lease in the store, as
 * client-go's leaderelection does it (defaults of kube-controller-manager: lease 15 s, renew
 * deadline 10 s, retry 2 s).
 *
 * The rules, and why they give at most one leader:
 * - Every write of the record is a compare-and-swap on its version (LeaderLock): of two replicas
 *   writing over the same version, one wins; the other re-reads.
 * - A challenger judges expiry by its own observation, never by the times in the record (they
 *   come from another machine's clock): it notes, on its own clock, when it first saw the current
 *   version; the lease has expired once `leaseDurationSeconds` have passed since then with no
 *   change. Only then (or when the record names nobody) does it write itself in.
 * - The leader renews every retry period. It stops leading the moment it has gone
 *   `renewDeadline` without a successful renewal, counted from the moment that renewal was
 *   sent, or the moment it sees another holder. Since a challenger's observation of that
 *   renewal comes after it was sent, and renewDeadline < leaseDuration, the old leader has
 *   stopped before any challenger may take over — given clocks that run at about the same rate
 *   (not the same time), with leaseDuration − renewDeadline to spare.
 *
 * Timing: a challenger reads every retry period (+ up to 20 % jitter) and also exactly when the
 * lease it watches would expire, so after a leader dies another takes over within
 * leaseDuration + one retry period (+ jitter) of its last renewal.
 *
 * Time and timers come from the injected Clock. Store errors are retried at the next period
 * (never thrown); `onStartedLeading`/`onStoppedLeading` are called in strict alternation.
 */
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { LeaderLock, LeaderRecord, VersionedRecord } from "../registry/leader-lock.js";

/** The timings of `--leader-elect-*` (validated by the caller: lease > renew deadline > retry > 0). */
export interface LeaderElectionTimings {
  /** Whole seconds' worth of ms: how long a challenger waits on an unchanged record. */
  leaseDurationMs: number;
  /** How long the leader keeps leading without a successful renewal. */
  renewDeadlineMs: number;
  /** How often the record is read (challengers) or renewed (the leader). */
  retryPeriodMs: number;
}

export interface LeaderElectorOptions extends LeaderElectionTimings {
  lock: LeaderLock;
  /** This replica's name in the record (unique among live replicas). */
  identity: string;
  clock: Clock;
  /** This replica now leads: start the controllers. */
  onStartedLeading(): void;
  /** This replica no longer leads (lost, or stop()): stop the controllers at once. */
  onStoppedLeading(): void;
  /** The holder this replica observes changed ("" = nobody). */
  onNewLeader?(identity: string): void;
  log?: Pick<Logger, "info" | "warn">;
  /** Extra random share of a retry period between reads (default 0.2; 0 in tests). */
  jitter?: number;
  random?: () => number;
}

type Outcome =
  | { kind: "leading" }
  /** Someone else holds a lease that has not expired in our eyes; it would expire at `expiresAt`. */
  | { kind: "held"; expiresAt: number }
  /** The record changed between our read and our write. */
  | { kind: "conflict" }
  | { kind: "failed"; err: unknown };

export class LeaderElector {
  private running = false;
  private leading = false;
  /** The version we last saw, and when we first saw it (our clock). */
  private observed: (VersionedRecord & { at: number }) | undefined;
  private holder = "";
  private cancelNext = (): void => {};
  private cancelDeadline = (): void => {};
  private inFlight: Promise<void> | undefined;

  constructor(private readonly o: LeaderElectorOptions) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder this replica last observed ("" = nobody, or not known yet). */
  get leader(): string {
    return this.holder;
  }

  /** Start campaigning (at once). Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * Stop campaigning: stop leading at once (onStoppedLeading), wait for a read or write in
   * flight, then, if the record names this replica, release it (holder "", so that another
   * replica takes over at its next read instead of after a whole lease). Never rejects.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.cancelNext();
    this.cancelDeadline();
    if (this.leading) this.lose("stopping");
    await this.inFlight;
    const seen = this.observed;
    if (!seen || seen.record.holderIdentity !== this.o.identity) return;
    const now = this.o.clock.now();
    const released: LeaderRecord = { ...seen.record, holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now };
    try {
      if ((await this.o.lock.write(released, seen.version)) !== undefined) {
        this.o.log?.info({ lock: this.o.lock.description }, "leader lease released");
      }
    } catch (err) {
      this.o.log?.warn({ err, lock: this.o.lock.description }, "could not release the leader lease; another replica takes over when it expires");
    }
  }

  private schedule(ms: number): void {
    this.cancelNext();
    this.cancelNext = this.o.clock.setTimer(() => void this.cycle(), ms);
  }

  private async cycle(): Promise<void> {
    if (!this.running || this.inFlight) return;
    const sentAt = this.o.clock.now();
    let outcome: Outcome;
    const attempt = this.tryAcquireOrRenew(sentAt).catch((err: unknown): Outcome => ({ kind: "failed", err }));
    this.inFlight = attempt.then(() => undefined);
    try {
      outcome = await attempt;
    } finally {
      this.inFlight = undefined;
    }
    if (!this.running) return;
    const now = this.o.clock.now();
    const retry = this.o.retryPeriodMs * (1 + (this.o.jitter ?? 0.2) * (this.o.random ?? Math.random)());
    switch (outcome.kind) {
      case "leading":
        // A renewal that took longer than the renew deadline does not count: others may have
        // judged us gone by now.
        if (now - sentAt >= this.o.renewDeadlineMs) {
          if (this.leading) this.lose("the renewal took longer than the renew deadline");
          break;
        }
        this.cancelDeadline();
        this.cancelDeadline = this.o.clock.setTimer(() => this.lose("no renewal within the renew deadline"), sentAt + this.o.renewDeadlineMs - now);
        if (!this.leading) {
          this.leading = true;
          this.o.log?.info({ identity: this.o.identity, lock: this.o.lock.description }, "became the leader: starting the controllers");
          this.o.onStartedLeading();
        }
        return this.schedule(this.o.retryPeriodMs);
      case "held":
        if (this.leading) this.lose(`the lease is held by ${JSON.stringify(this.holder)}`);
        // Read again at the next period, or exactly when the lease would expire if sooner.
        return this.schedule(Math.max(0, Math.min(retry, outcome.expiresAt - now)));
      case "failed":
        this.o.log?.warn({ err: outcome.err, lock: this.o.lock.description }, "leader election: reading or writing the lease failed; retrying");
        break;
      case "conflict":
        break;
    }
    this.schedule(this.leading ? this.o.retryPeriodMs : retry);
  }

  /** One read, and a write when the lease is ours or free to take. */
  private async tryAcquireOrRenew(now: number): Promise<Outcome> {
    const current = await this.o.lock.get();
    if (current && current.version !== this.observed?.version) {
      this.observe(current, this.o.clock.now());
    }
    const old = current?.record;
    const mine = old?.holderIdentity === this.o.identity;
    if (old && old.holderIdentity !== "" && !mine) {
      const expiresAt = this.observed!.at + old.leaseDurationSeconds * 1000;
      if (expiresAt > this.o.clock.now()) return { kind: "held", expiresAt };
    }
    const next: LeaderRecord = {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000),
      acquireTime: mine && old ? old.acquireTime : now,
      renewTime: now,
      leaseTransitions: old ? old.leaseTransitions + (mine ? 0 : 1) : 0,
    };
    const version = await this.o.lock.write(next, current?.version ?? 0);
    if (version === undefined) return { kind: "conflict" };
    this.observe({ record: next, version }, now);
    return { kind: "leading" };
  }

  private observe(seen: VersionedRecord, at: number): void {
    this.observed = { ...seen, at };
    if (seen.record.holderIdentity !== this.holder) {
      this.holder = seen.record.holderIdentity;
      this.o.onNewLeader?.(this.holder);
    }
  }

  private lose(why: string): void {
    this.cancelDeadline();
    if (!this.leading) return;
    this.leading = false;
    this.o.log?.warn({ identity: this.o.identity, lock: this.o.lock.description, why }, "stopped leading: stopping the controllers");
    this.o.onStoppedLeading();
  }
}
