/**
 * Who runs the controllers on this server. With leader election (replicas on etcd), the
 * replica holding the controllers' Lease runs the `Controllers` group and every other replica
 * serves the API without them; without it (SQLite: one process owns the store), this server
 * always does.
 *
 * Contracts:
 * - the group starts only once the informers have synced, and only while this replica leads;
 *   on losing the lease it is stopped at once (its timers and subscriptions go synchronously;
 *   a pass already writing may finish). Starts and stops never overlap: each waits for the one
 *   before it. A new start gives every node a full grace period (the group's own contract).
 * - readiness never depends on leading: a replica is ready once its informers have synced (and,
 *   without election, once the controllers have synced too, as before).
 * - metrics: `nodeplane_leader{identity}` is 1 while this replica runs the controllers, and
 *   `nodeplane_leader_holder{identity}` is 1 for the holder this replica observes.
 */
import os from "node:os";
import type { Logger } from "pino";
import { Gauge, type Registry } from "prom-client";
import type { Clock } from "../clock.js";
import type { Controllers } from "../controller/controllers.js";
import { type LeaderElectionTimings, LeaderElector } from "../controller/leader.js";
import { InvalidError } from "../errors.js";
import { StoreLeaderLock } from "../registry/leader-lock.js";
import type { Store } from "../store/store.js";

export interface LeaderElectionSettings extends LeaderElectionTimings {
  /** This replica's name in the Lease (default: host name and process id). */
  identity?: string;
}

export const LEADER_ELECTION_DEFAULTS: LeaderElectionTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** Kubernetes' rules for the three durations; throws InvalidError naming the flag. */
export function checkLeaderElection(s: LeaderElectionTimings): void {
  if (!(s.retryPeriodMs > 0)) throw InvalidError.of("leader-elect-retry-period", `${s.retryPeriodMs}ms`, "must be positive");
  if (!(s.renewDeadlineMs > s.retryPeriodMs * 1.2)) {
    throw InvalidError.of("leader-elect-renew-deadline", `${s.renewDeadlineMs}ms`, `must be more than 1.2 × --leader-elect-retry-period (${s.retryPeriodMs}ms)`);
  }
  if (!(s.leaseDurationMs > s.renewDeadlineMs)) {
    throw InvalidError.of("leader-elect-lease-duration", `${s.leaseDurationMs}ms`, `must be longer than --leader-elect-renew-deadline (${s.renewDeadlineMs}ms)`);
  }
  if (s.leaseDurationMs % 1000 !== 0) {
    throw InvalidError.of("leader-elect-lease-duration", `${s.leaseDurationMs}ms`, "must be whole seconds (the Lease records leaseDurationSeconds)");
  }
}

export interface Leadership {
  /** Settles once the server may report ready (see above). */
  readonly ready: Promise<void>;
  /** A line for /readyz ("leader: NAME (this replica)"), or undefined without election. */
  describe(): string | undefined;
  /** Stop leading (the controllers at once) and release the Lease if this replica holds it. */
  stop(): Promise<void>;
}

export interface LeadershipOptions {
  controllers: Controllers;
  /** Settles once every informer has synced. */
  synced: Promise<void>;
  store: Store;
  clock: Clock;
  log: Logger;
  metrics: Registry;
  /** undefined: this server always runs the controllers. */
  election: LeaderElectionSettings | undefined;
}

export function startLeadership(o: LeadershipOptions): Leadership {
  const identity = o.election?.identity ?? `${os.hostname()}_${process.pid}`;
  const leading = new Gauge({
    name: "nodeplane_leader",
    help: "1 while this server runs the controllers (holds the leader Lease, or runs without leader election), else 0.",
    labelNames: ["identity"] as const,
    registers: [o.metrics],
  });
  leading.set({ identity }, 0);
  const holder = new Gauge({
    name: "nodeplane_leader_holder",
    help: "1 for the replica this server observes holding the controllers' leader Lease.",
    labelNames: ["identity"] as const,
    registers: [o.metrics],
  });

  if (!o.election) {
    holder.set({ identity }, 1);
    leading.set({ identity }, 1);
    return {
      ready: o.synced.then(() => o.controllers.start()),
      describe: () => undefined,
      stop: () => o.controllers.stop(),
    };
  }

  const log = o.log.child({ component: "leader-election" });
  // Starts and stops one after the other; a start is skipped if leadership was lost meanwhile.
  let chain: Promise<void> = Promise.resolve();
  const step = (fn: () => Promise<void>): void => {
    chain = chain.then(fn).catch((err: unknown) => log.error({ err }, "starting or stopping the controllers failed"));
  };
  const elector: LeaderElector = new LeaderElector({
    ...o.election,
    lock: new StoreLeaderLock(o.store),
    identity,
    clock: o.clock,
    log,
    onStartedLeading: () => {
      leading.set({ identity }, 1);
      step(async () => {
        if (elector.isLeader) await o.controllers.start();
      });
    },
    onStoppedLeading: () => {
      leading.set({ identity }, 0);
      // At once, not behind a start in progress: stop() interrupts it.
      const stopped = o.controllers.stop();
      step(() => stopped);
    },
    onNewLeader: (who) => {
      holder.reset();
      if (who !== "") holder.set({ identity: who }, 1);
      log.info({ leader: who || "(none)", identity }, "leader observed");
    },
  });
  let started = true;
  // Campaign only with synced informers: a leader must judge nodes on a complete list.
  void o.synced.then(() => {
    if (started) elector.start();
  });
  log.info({ identity, ...o.election }, "leader election on: the controllers run on the replica holding the leader Lease");
  return {
    ready: o.synced,
    describe: () => {
      const who = elector.leader;
      if (who === "") return "leader: none yet (election in progress)";
      return `leader: ${who}${elector.isLeader ? " (this replica)" : ""}`;
    },
    async stop() {
      started = false;
      await elector.stop();
      await chain;
    },
  };
}
