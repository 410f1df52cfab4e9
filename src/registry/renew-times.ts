/**
 * The Lease renew times the node lifecycle controller judges by: the shared Lease informer
 * (what the store holds: every server's checkpoints and durable writes) together with the
 * renewals this server answered, written or not (lease-renewals.ts `latestRenewMs`). On one server
 * the controller's next pass so sees every renewal answered before it, whatever the checkpoints
 * do and however far the Lease informer lags behind them: no node is judged on a renewal that
 * is only late to reach the store or the informer. Renewals taken by other servers reach it
 * with their checkpoints, through the informer.
 *
 * The view is read-only, changes nothing in either source, and has no subscription: the
 * controller reads it in each pass, so a renewal costs no call into the controller. A Lease's
 * time is the later of the two.
 */
import type { LeaseRenewTime, RenewTimes, SharedInformer } from "../informer/shared.js";
import type { LeaseRenewals } from "./lease-renewals.js";

export function renewTimes(informer: SharedInformer<LeaseRenewTime>, renewals: LeaseRenewals): RenewTimes {
  return {
    synced: () => informer.synced(),
    get(name) {
      const stored = informer.get(name);
      const mine = renewals.latestRenewMs(name);
      return mine !== undefined && mine > (stored ?? -1) ? mine : stored;
    },
    waitFor: (revision) => informer.waitFor(revision),
  };
}
