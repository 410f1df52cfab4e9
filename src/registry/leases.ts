/**
 * Node Leases (coordination/v1 in "kube-node-lease"): the cheap heartbeat. A renewal changes
 * only renew_time (and holder/duration when they change), so it is a tiny write.
 */
import { Lease, LeaseSpec } from "../gen/nodeplane/v1/lease.js";
import type { OwnerReference } from "../gen/nodeplane/v1/meta.js";
import type { FullNode } from "../model/node.js";
import { LEASE_NAMESPACE } from "../model/keys.js";

const DEFAULT_LEASE_DURATION_SECONDS = 40;

export interface Renewal {
  holderIdentity: string;
  /** 0 = keep the current duration (the default for a new lease). */
  leaseDurationSeconds: number;
}

/** A node's Lease is owned by its Node. */
export function ownedBy(node: FullNode): OwnerReference[] {
  return [{ apiVersion: "nodeplane.io/v1", kind: "Node", name: node.metadata.name, uid: node.metadata.uid, controller: false }];
}

/** A node's first Lease, owned by its Node. */
export function newLease(node: FullNode, renewal: Renewal, now: Date): Lease {
  return Lease.fromPartial({
    metadata: {
      name: node.metadata.name,
      namespace: LEASE_NAMESPACE,
      uid: crypto.randomUUID(),
      creationTimestamp: now,
      ownerReferences: ownedBy(node),
    },
    spec: {
      holderIdentity: renewal.holderIdentity || node.metadata.name,
      leaseDurationSeconds: renewal.leaseDurationSeconds || DEFAULT_LEASE_DURATION_SECONDS,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    },
  });
}

/** The next state of a held Lease after a renewal at `now`. */
export function renewedLease(lease: Lease, renewal: Renewal, now: Date): Lease {
  const spec = lease.spec ?? LeaseSpec.fromPartial({});
  const holderChanged = renewal.holderIdentity !== "" && renewal.holderIdentity !== spec.holderIdentity;
  return {
    ...lease,
    spec: {
      holderIdentity: holderChanged ? renewal.holderIdentity : spec.holderIdentity,
      leaseDurationSeconds: renewal.leaseDurationSeconds || spec.leaseDurationSeconds || DEFAULT_LEASE_DURATION_SECONDS,
      acquireTime: holderChanged ? now : spec.acquireTime,
      renewTime: now,
      leaseTransitions: spec.leaseTransitions + (holderChanged ? 1 : 0),
    },
  };
}
