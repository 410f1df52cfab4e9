/**
 * Where each kind of object lives in the store: one key prefix per kind, the object's name
 * after it (Kubernetes' /registry layout, which kine and etcd users know).
 */
export const NODE_PREFIX = "/registry/nodes/";
export const LEASE_NAMESPACE = "kube-node-lease";
export const LEASE_PREFIX = `/registry/leases/${LEASE_NAMESPACE}/`;
/** Events (src/registry/events.ts), one key per node and reason. */
export const EVENT_PREFIX = "/registry/events/";
/** Pod CIDR blocks in use, one key per block (src/ipam/allocator.ts), written with their node. */
export const IPAM_PREFIX = "/registry/ipam/";

export const nodeKey = (name: string): string => NODE_PREFIX + name;
export const leaseKey = (name: string): string => LEASE_PREFIX + name;
