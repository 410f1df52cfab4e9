/**
 * NodeRegistry: the Node and Lease rules of API.md over a Store. No gRPC here: callers get
 * domain errors (src/errors.ts). Every change is a compare-and-swap transaction on the
 * store; read-modify-write operations without a client precondition retry on conflict.
 */
import type { Clock } from "../clock.js";
import { systemClock } from "../clock.js";
import { AlreadyExistsError, ConflictError, NotFoundError, UnavailableError } from "../errors.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import { type Node, NodeSpec, type NodeStatus } from "../gen/nodeplane/v1/node.js";
import type { KeyValue, Op, Store, TxnRequest } from "../store/store.js";
import { validateLeaseRequest, validateNode, validateNodeStatus } from "../validation/node.js";
import { decodeLease, decodeNode, encodeLease, encodeNode, formatRevision, leaseKey, nodeKey } from "./codec.js";
import { newLease, ownedBy, type Renewal, renewedLease } from "./leases.js";
import {
  type FullNode,
  fullNode,
  keepManaged,
  reconcileRegistration,
  recordAgentOwnership,
  stampConditions,
  stampTaints,
  withoutManaged,
} from "./reconcile.js";
import { parseRevision } from "./paging.js";
import { KeyedSerializer } from "./serial.js";
import { listNodes, type ListNodesRequest, type ListNodesResult } from "./list.js";

export interface NodeRegistryOptions {
  store: Store;
  clock?: Clock;
  /** Attempts of a read-modify-write before giving up under contention. */
  maxRetries?: number;
}

/** A stored object together with its key's store metadata. */
interface Read<T> {
  obj: T;
  kv: KeyValue;
}

export class NodeRegistry {
  readonly store: Store;
  private readonly clock: Clock;
  private readonly maxRetries: number;
  private readonly serial = new KeyedSerializer();

  constructor(opts: NodeRegistryOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.maxRetries = opts.maxRetries ?? 32;
  }

  private now(): Date {
    return new Date(this.clock.now());
  }

  /** Self-registration: create the Node and its Lease, or reconcile the agent's fields. */
  async register(input: Node): Promise<{ node: Node; lease: Lease }> {
    const requested = fullNode(input);
    validateNode(requested, "register");
    const name = requested.metadata.name;
    const renewal: Renewal = { holderIdentity: name, leaseDurationSeconds: 0 };
    return this.retry(name, async () => {
      const now = this.now();
      const [current, currentLease] = await Promise.all([this.readNode(name), this.readLease(name)]);
      let node: FullNode;
      if (current) {
        node = reconcileRegistration(current.obj, requested, now);
        if (specChanged(current.obj, node)) node.metadata.generation += 1n;
      } else {
        node = this.prepareNew(requested, now);
        recordAgentOwnership(node, Object.keys(requested.metadata.labels), requested.spec.taints);
      }
      const lease = currentLease ? renewedLease(currentLease.obj, renewal, now) : newLease(node, renewal, now);
      // A lease left from an earlier incarnation of the node is adopted by this one.
      lease.metadata = { ...lease.metadata!, ownerReferences: ownedBy(node) };
      const nodeUnchanged = current !== undefined && sameBytes(current.kv.value, encodeNode(node));
      const ops: Op[] = [];
      if (!nodeUnchanged) ops.push({ type: "put", key: nodeKey(name), value: encodeNode(node) });
      ops.push({ type: "put", key: leaseKey(name), value: encodeLease(lease) });
      const res = await this.store.txn({
        compare: [
          { key: nodeKey(name), modRevision: current?.kv.modRevision ?? 0 },
          { key: leaseKey(name), modRevision: currentLease?.kv.modRevision ?? 0 },
        ],
        ops,
      });
      if (!res.succeeded) return undefined;
      const leaseKv = res.results[ops.length - 1]!;
      const nodeOut = nodeUnchanged ? current.obj : decodeNode(res.results[0]!);
      return { node: nodeOut, lease: decodeLease(leaseKv) };
    });
  }

  /** Manual registration by an operator: the Node only; its Lease comes with the first renewal. */
  async createNode(input: Node): Promise<Node> {
    const requested = fullNode(input);
    validateNode(requested, "create");
    const node = this.prepareNew(requested, this.now());
    const key = nodeKey(node.metadata.name);
    const res = await this.store.txn({ compare: [{ key, modRevision: 0 }], ops: [{ type: "put", key, value: encodeNode(node) }] });
    if (!res.succeeded) throw new AlreadyExistsError("node", node.metadata.name);
    return decodeNode(res.results[0]!);
  }

  async getNode(name: string): Promise<Node> {
    const read = await this.readNode(name);
    if (!read) throw new NotFoundError("node", name);
    return read.obj;
  }

  /** Nodes matching selectors, in pages consistent with one revision. */
  listNodes(req: ListNodesRequest): Promise<ListNodesResult> {
    return listNodes(this.store, req);
  }

  /** Replace spec, labels and annotations; status is ignored. */
  async updateNode(input: Node): Promise<Node> {
    const requested = fullNode(input);
    validateNode(requested, "update");
    const name = requested.metadata.name;
    const precondition = parseRevision("node.metadata.resource_version", requested.metadata.resourceVersion);
    return this.mutateNode(name, precondition, (stored, now) => {
      const next: FullNode = {
        metadata: {
          ...stored.metadata,
          labels: requested.metadata.labels,
          annotations: keepManaged(requested.metadata.annotations, stored.metadata.annotations),
        },
        spec: { ...requested.spec, taints: stampTaints(requested.spec.taints, stored.spec.taints, now) },
        status: stored.status,
      };
      if (specChanged(stored, next)) next.metadata.generation += 1n;
      return next;
    });
  }

  /** The status subresource: replace the status, keeping last_transition_time right. */
  async updateStatus(name: string, status: NodeStatus | undefined, resourceVersion: string): Promise<Node> {
    const requested = fullNode({ metadata: { ...fullNode(undefined).metadata, name }, status });
    validateNodeStatus(requested.status, "status");
    const precondition = parseRevision("resource_version", resourceVersion);
    return this.mutateNode(name, precondition, (stored, now) => ({
      ...stored,
      status: { ...requested.status, conditions: stampConditions(requested.status.conditions, stored.status.conditions, now) },
    }));
  }

  /** Remove the Node and its Lease; answers the node as it was. */
  async deleteNode(name: string, resourceVersion: string): Promise<Node> {
    const precondition = parseRevision("resource_version", resourceVersion);
    return this.retry(name, async () => {
      const current = await this.readNode(name);
      if (!current) throw new NotFoundError("node", name);
      checkPrecondition(name, precondition, current.kv);
      const res = await this.store.txn({
        compare: [{ key: nodeKey(name), modRevision: current.kv.modRevision }],
        ops: [
          { type: "delete", key: nodeKey(name) },
          { type: "delete", key: leaseKey(name) },
        ],
      });
      return res.succeeded ? current.obj : undefined;
    });
  }

  /** The heartbeat: create the node's Lease on first call, else renew it. */
  async renewLease(nodeName: string, holderIdentity: string, leaseDurationSeconds: number): Promise<Lease> {
    validateLeaseRequest(nodeName, holderIdentity, leaseDurationSeconds);
    const renewal: Renewal = { holderIdentity, leaseDurationSeconds };
    return this.retry(nodeName, async () => {
      const [node, lease] = await Promise.all([this.readNode(nodeName), this.readLease(nodeName)]);
      if (!node) throw new NotFoundError("node", nodeName);
      const now = this.now();
      const next = lease ? renewedLease(lease.obj, renewal, now) : newLease(node.obj, renewal, now);
      const res = await this.store.txn({
        compare: [
          { key: nodeKey(nodeName), modRevision: node.kv.modRevision },
          { key: leaseKey(nodeName), modRevision: lease?.kv.modRevision ?? 0 },
        ],
        ops: [{ type: "put", key: leaseKey(nodeName), value: encodeLease(next) }],
      });
      return res.succeeded ? decodeLease(res.results[0]!) : undefined;
    });
  }

  async getLease(name: string): Promise<Lease> {
    const read = await this.readLease(name);
    if (!read) throw new NotFoundError("lease", `kube-node-lease/${name}`);
    return read.obj;
  }

  private async readNode(name: string): Promise<Read<FullNode> | undefined> {
    const kv = await this.store.get(nodeKey(name));
    return kv && { obj: fullNode(decodeNode(kv)), kv };
  }

  private async readLease(name: string): Promise<Read<Lease> | undefined> {
    const kv = await this.store.get(leaseKey(name));
    return kv && { obj: decodeLease(kv), kv };
  }

  /** Server-set fields of a new node. */
  private prepareNew(requested: FullNode, now: Date): FullNode {
    return {
      metadata: {
        ...requested.metadata,
        annotations: withoutManaged(requested.metadata.annotations),
        uid: crypto.randomUUID(),
        resourceVersion: "",
        generation: 1n,
        creationTimestamp: now,
        ownerReferences: [],
      },
      spec: { ...requested.spec, taints: stampTaints(requested.spec.taints, [], now) },
      status: { ...requested.status, conditions: stampConditions(requested.status.conditions, [], now) },
    };
  }

  /** Read-modify-write of one node under CAS; with a client precondition a conflict is final. */
  private mutateNode(
    name: string,
    precondition: number | undefined,
    change: (stored: FullNode, now: Date) => FullNode,
  ): Promise<Node> {
    return this.retry(name, async () => {
      const current = await this.readNode(name);
      if (!current) throw new NotFoundError("node", name);
      checkPrecondition(name, precondition, current.kv);
      const next = change(current.obj, this.now());
      const value = encodeNode(next);
      if (sameBytes(value, current.kv.value)) return current.obj;
      const req: TxnRequest = {
        compare: [{ key: nodeKey(name), modRevision: current.kv.modRevision }],
        ops: [{ type: "put", key: nodeKey(name), value }],
      };
      const res = await this.store.txn(req);
      return res.succeeded ? decodeNode(res.results[0]!) : undefined;
    });
  }

  /**
   * Run an attempt until it returns a value. `undefined` means a compare failed and the
   * attempt is retried on fresh state (an attempt with a client precondition then throws
   * ConflictError itself when it reads the newer version). Operations on one node (and its
   * Lease) run one at a time in this process.
   */
  private retry<T>(name: string, attempt: () => Promise<T | undefined>): Promise<T> {
    return this.serial.run(name, async () => {
      for (let i = 0; i < this.maxRetries; i++) {
        const out = await attempt();
        if (out !== undefined) return out;
      }
      throw new UnavailableError(`too much contention on node ${JSON.stringify(name)}: gave up after ${this.maxRetries} attempts; retry`);
    });
  }
}

function checkPrecondition(name: string, precondition: number | undefined, kv: KeyValue): void {
  if (precondition !== undefined && precondition !== kv.modRevision) {
    throw new ConflictError("node", name, formatRevision(precondition), formatRevision(kv.modRevision));
  }
}

function specChanged(before: FullNode, after: FullNode): boolean {
  return !sameBytes(NodeSpec.encode(before.spec).finish(), NodeSpec.encode(after.spec).finish());
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
