/**
 * The leader-election record of the controllers, kept in the store as a coordination Lease
 * (Kubernetes' resourcelock.LeaseLock): `/registry/leases/kube-system/nodeplane-controllers`,
 * outside the node Leases' namespace, so no node informer, list or REST view ever sees it.
 *
 * The contract the elector (src/controller/leader.ts) relies on: every write is a
 * compare-and-swap on the record's version (the store revision of its last change), so of two
 * replicas writing over the same version exactly one succeeds; and the version changes on every
 * successful write, so a reader can tell "changed since I last looked" by the version alone.
 */
import { Lease } from "../gen/nodeplane/v1/lease.js";
import type { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import { decodeLease, encodeLease } from "../model/codec.js";
import type { Store } from "../store/store.js";

/** What the record says (times in ms since the epoch, on the writer's clock: informative only). */
export interface LeaderRecord {
  /** Who holds it ("" = released: anyone may take it at once). */
  holderIdentity: string;
  /** How long the holder promises to stay silent before giving up, in whole seconds. */
  leaseDurationSeconds: number;
  acquireTime: number;
  renewTime: number;
  /** How many times the holder changed. */
  leaseTransitions: number;
}

export interface VersionedRecord {
  record: LeaderRecord;
  /** The store revision of the record's last change. */
  version: number;
}

export interface LeaderLock {
  /** "kube-system/nodeplane-controllers", for logs. */
  readonly description: string;
  /** The record, or undefined if there is none yet. Rejects when the store does (UnavailableError). */
  get(): Promise<VersionedRecord | undefined>;
  /**
   * Write `record` if the stored one is still at `version` (0: there must be none). Answers the
   * new version, or undefined when the record changed in between (nothing written).
   */
  write(record: LeaderRecord, version: number): Promise<number | undefined>;
}

const LEADER_LEASE_NAMESPACE = "kube-system";
const CONTROLLERS_LEASE_NAME = "nodeplane-controllers";

export class StoreLeaderLock implements LeaderLock {
  readonly description: string;
  private readonly key: string;
  /** The stored object's metadata (uid, creation time), kept across writes. */
  private meta: ObjectMeta | undefined;

  constructor(
    private readonly store: Pick<Store, "get" | "txn">,
    private readonly name = CONTROLLERS_LEASE_NAME,
    private readonly namespace = LEADER_LEASE_NAMESPACE,
  ) {
    this.description = `${namespace}/${name}`;
    this.key = `/registry/leases/${namespace}/${name}`;
  }

  async get(): Promise<VersionedRecord | undefined> {
    const kv = await this.store.get(this.key);
    if (!kv) return undefined;
    const lease = decodeLease(kv);
    this.meta = lease.metadata;
    const spec = lease.spec;
    return {
      version: kv.modRevision,
      record: {
        holderIdentity: spec?.holderIdentity ?? "",
        leaseDurationSeconds: spec?.leaseDurationSeconds ?? 0,
        acquireTime: spec?.acquireTime?.getTime() ?? 0,
        renewTime: spec?.renewTime?.getTime() ?? 0,
        leaseTransitions: spec?.leaseTransitions ?? 0,
      },
    };
  }

  async write(record: LeaderRecord, version: number): Promise<number | undefined> {
    const meta = version !== 0 && this.meta ? this.meta : { name: this.name, namespace: this.namespace, uid: crypto.randomUUID(), creationTimestamp: new Date(record.renewTime) };
    const lease = Lease.fromPartial({
      metadata: { ...meta, resourceVersion: "" },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        acquireTime: new Date(record.acquireTime),
        renewTime: new Date(record.renewTime),
        leaseTransitions: record.leaseTransitions,
      },
    });
    const res = await this.store.txn({ compare: [{ key: this.key, modRevision: version }], ops: [{ type: "put", key: this.key, value: encodeLease(lease) }] });
    if (!res.succeeded) return undefined;
    this.meta = lease.metadata;
    return res.revision;
  }
}
