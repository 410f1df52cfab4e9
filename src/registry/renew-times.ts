/**
 * The Lease renew times the node lifecycle controller judges by: the shared Lease informer
 * (what the store holds: every server's checkpoints and durable writes) together with the
 * renewals this server answered and has not yet checkpointed (lease-renewals.ts). On one server
 * the controller so sees every renewal the moment it is answered, whatever the checkpoints do:
 * no node is judged on a renewal that is only late to reach the store. Renewals taken by other
 * servers reach it with their checkpoints.
 *
 * The view is read-only and changes nothing in either source. Renew times only grow in it: a
 * Lease's time is the later of the two.
 */
import type { LeaseRenewTime, SharedInformer } from "../informer/shared.js";
import type { ReflectorHandlers } from "../informer/reflector.js";
import type { LeaseRenewals } from "./lease-renewals.js";

export function renewTimes(informer: SharedInformer<LeaseRenewTime>, renewals: LeaseRenewals): SharedInformer<LeaseRenewTime> {
  const latest = (name: string, stored: LeaseRenewTime | undefined): LeaseRenewTime | undefined => {
    const mine = renewals.answered(name);
    return mine !== undefined && mine > (stored ?? -1) ? mine : stored;
  };
  return {
    synced: () => informer.synced(),
    get hasSynced() {
      return informer.hasSynced;
    },
    get revision() {
      return informer.revision;
    },
    get size() {
      return informer.size;
    },
    get: (name) => latest(name, informer.get(name)),
    *entries() {
      for (const [name, stored] of informer.entries()) yield [name, latest(name, stored)!];
    },
    names: () => informer.names(),
    waitFor: (revision) => informer.waitFor(revision),
    subscribe(handlers: ReflectorHandlers<LeaseRenewTime>) {
      const stopStore = informer.subscribe(handlers);
      const stopMine = renewals.onRenewal((name, renewMs) => {
        const stored = informer.get(name);
        if (stored !== undefined) handlers.onUpdate?.(name, renewMs, stored, informer.revision);
      });
      return () => {
        stopMine();
        stopStore();
      };
    },
  };
}
