/**
 * NodeRegistry: the Node and Lease rules of API.md over a Store. No gRPC here: callers get
 * domain errors (src/errors.ts). Every change is a compare-and-swap transaction on the
 * store; read-modify-write operations without a client precondition retry on conflict.
 */
import type { Clock } from "../clock.js";
import { systemClock } from "../clock.js";
import { AlreadyExistsError, ConflictError, InvalidError, NotFoundError, UnavailableError } from "../errors.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import { type Node, type NodeAddress, NodeSpec, type NodeStatus, type Taint } from "../gen/nodeplane/v1/node.js";
import { type Claim, cidrNotAvailableMessage, type Ipam } from "../ipam/ipam.js";
import { pages } from "../store/pages.js";
import type { Compare, KeyValue, Op, Store, TxnRequest } from "../store/store.js";
import { addressViolations, validateLeaseRequest, validateNode, validateNodeStatus } from "../validation/node.js";
import { dns1123SubdomainViolations } from "../validation/names.js";
import { decodeLease, decodeNode, encodeLease, encodeNode } from "../model/codec.js";
import { writtenNode } from "../model/node-bytes.js";
import { formatRevision, parseRevision, revisionOf } from "../model/revision.js";
import { sameMessage } from "../model/same-message.js";
import { LEASE_PREFIX, leaseKey, nodeKey } from "../model/keys.js";
import { newLease, ownedBy, type Renewal, renewedLease } from "./leases.js";
import { type FullNode, fullNode } from "../model/node.js";
import { keepManaged, keepProviderAddresses, reconcileRegistration, recordAgentOwnership, stampConditions, stampTaints, withoutManaged, withProviderAddresses } from "./reconcile.js";
import { KeyedSerializer } from "./serial.js";
import { LeaseRenewals, type LeaseRenewalsOptions } from "./lease-renewals.js";
import { listLeases, listNodes, type ListNodesRequest, type ListNodesResult } from "./list.js";
import { answerLimitFor, checkObjectSize, objectLimitFor, standIn } from "./size.js";

export interface NodeRegistryOptions {
  store: Store;
  clock?: Clock;
  /** Pod CIDR allocation (--allocate-node-cidrs). */
  ipam?: Ipam;
  /** Taints every new node gets (e.g. the cloud provider's "uninitialized"). */
  newNodeTaints?: Taint[];
  /** Attempts of a read-modify-write before giving up under contention. */
  maxRetries?: number;
  /** The largest answer (the server's --max-message-size; default 4 MiB): lists and reads fit in it. */
  maxMessageBytes?: number;
  /** The largest encoded Node stored (default objectLimitFor(maxMessageBytes): 1.5 MiB at most; see size.ts). */
  maxObjectBytes?: number;
  /** How often renewals are checkpointed, ms (default 1,000; 0 = each renewal is a durable write). See lease-renewals.ts. */
  leaseCheckpointMs?: number;
  /** How long a checkpoint may lag before renewals wait for it, ms (default: the checkpoint interval). */
  leaseLagLimitMs?: number;
  /** How far a Lease's stored renew time may trail its renewals, ms (default 0: every renewal written by the next checkpoint). */
  leaseWriteIntervalMs?: number;
  /** A lease checkpoint failed (its renewals are written by the next one). */
  onCheckpointError?: (err: Error) => void;
  /** A lease checkpoint ended (metrics). */
  onCheckpoint?: LeaseRenewalsOptions["onCheckpoint"];
  /**
   * The server's node informer (its revision in metadata.resource_version): a read-modify-write
   * without a client precondition starts from its copy instead of reading and decoding the
   * store's, as kube-apiserver's GuaranteedUpdate starts from its watch cache. The compare on the
   * copy's revision makes a stale copy harmless: a failed compare retries from the store.
   * Once it has synced, a Register of a node it does not have (and whose Lease this server does
   * not know) takes the node as new without reading it or its Lease: the compares (both keys
   * absent) make a wrong guess a failed commit, and the next attempt reads both.
   */
  nodes?: { get(name: string): FullNode | undefined; readonly hasSynced: boolean };
}

/** Leases per store read when loading them at start (loadLeases). */
const LEASE_LOAD_PAGE = 500;

/** How often Lease renewals are checkpointed by default, ms (--lease-checkpoint-interval). */
export const DEFAULT_LEASE_CHECKPOINT_MS = 1000;

/** A stored object together with its key's store metadata. */
interface Read<T, K = KeyValue> {
  obj: T;
  kv: K;
}

/** A node to change: read from the store (with its stored bytes), or the node informer's copy (without). */
type NodeBase = Read<FullNode, Pick<KeyValue, "modRevision"> & { value?: Uint8Array }>;

export class NodeRegistry {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly maxRetries: number;
  private readonly serial = new KeyedSerializer();
  /**
   * The Leases this server knows (last written or read), with the renewals it answered and has
   * not yet checkpointed. A write starts from them instead of reading and decoding the store's
   * copy (as kube-apiserver's GuaranteedUpdate starts from its watch cache); its compare on their
   * revision makes a stale one harmless: a failed compare retries from the store.
   */
  readonly renewals: LeaseRenewals;
  private readonly ipam: Ipam | undefined;
  private readonly newNodeTaints: Taint[];
  private readonly maxMessageBytes: number;
  private readonly maxObjectBytes: number;
  private readonly nodes: NodeRegistryOptions["nodes"];

  constructor(opts: NodeRegistryOptions) {
    this.nodes = opts.nodes;
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.maxRetries = opts.maxRetries ?? 32;
    this.ipam = opts.ipam;
    this.newNodeTaints = opts.newNodeTaints ?? [];
    this.maxMessageBytes = opts.maxMessageBytes ?? 4 * 1024 * 1024;
    this.maxObjectBytes = opts.maxObjectBytes ?? objectLimitFor(this.maxMessageBytes);
    this.renewals = new LeaseRenewals({
      store: opts.store,
      clock: this.clock,
      intervalMs: opts.leaseCheckpointMs ?? DEFAULT_LEASE_CHECKPOINT_MS,
      lagLimitMs: opts.leaseLagLimitMs,
      writeIntervalMs: opts.leaseWriteIntervalMs,
      onError: opts.onCheckpointError,
      onCheckpoint: opts.onCheckpoint,
    });
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
    // Two point reads of the store that miss, for a new node (~10 % of the server's thread while
    // 100,000 nodes register): skipped on the first attempt when nothing here has seen the node
    // or its Lease (see NodeRegistryOptions.nodes), judged when that attempt runs. Never when the
    // agent asks for pod CIDRs and IPAM is on: a new node's claim of them is judged at once
    // (INVALID_ARGUMENT when a block is taken), before any compare could say the node exists,
    // and an existing node keeps its own.
    let mayGuess = !(this.ipam !== undefined && (requested.spec.podCidrs.length > 0 || requested.spec.podCidr !== ""));
    return this.retry(name, async () => {
      const now = this.now();
      const unseen = mayGuess && this.nodes?.hasSynced === true && this.nodes.get(name) === undefined && !this.renewals.knows(name);
      mayGuess = false;
      const [current, currentLease] = unseen ? [undefined, undefined] : await Promise.all([this.readNode(name), this.readLease(name)]);
      let node: FullNode;
      let claim: Claim | undefined;
      if (current) {
        node = reconcileRegistration(current.obj, requested, now);
        if (specChanged(current.obj, node)) node.metadata.generation += 1n;
      } else {
        node = this.prepareNew(requested, now);
        recordAgentOwnership(node, Object.keys(requested.metadata.labels), requested.spec.taints);
        claim = this.allocate(node, now);
      }
      const lease = currentLease ? renewedLease(currentLease.obj, renewal, now) : newLease(node, renewal, now);
      // A lease left from an earlier incarnation of the node is adopted by this one.
      lease.metadata = { ...lease.metadata!, ownerReferences: ownedBy(node) };
      const value = encodeNode(node);
      const nodeUnchanged = current !== undefined && sameBytes(current.kv.value, value);
      if (!nodeUnchanged) checkObjectSize(value, this.maxObjectBytes);
      const ops: Op[] = [];
      if (!nodeUnchanged) ops.push({ type: "put", key: nodeKey(name), value });
      ops.push({ type: "put", key: leaseKey(name), value: encodeLease(lease) });
      const compare = [
        { key: nodeKey(name), modRevision: current?.kv.modRevision ?? 0 },
        { key: leaseKey(name), modRevision: currentLease?.kv.modRevision ?? 0 },
      ];
      const res = await this.commitWithClaim(name, claim, compare, ops);
      if (!res) return undefined;
      // The objects in hand are what GetNode and GetLease will decode from these bytes.
      const nodeOut = nodeUnchanged ? this.answer(current.obj, current.kv.value) : writtenNode(node, res[0]!);
      return { node: nodeOut, lease: this.renewals.written(name, lease, res[nodeUnchanged ? 0 : 1]!) };
    });
  }

  /** Manual registration by an operator: the Node only; its Lease comes with the first renewal. */
  async createNode(input: Node): Promise<Node> {
    const requested = fullNode(input);
    validateNode(requested, "create");
    const name = requested.metadata.name;
    return this.retry(name, async () => {
      const now = this.now();
      const node = this.prepareNew(requested, now);
      const claim = this.allocate(node, now);
      const key = nodeKey(name);
      const value = encodeNode(node);
      checkObjectSize(value, this.maxObjectBytes);
      const res = await this.commitWithClaim(name, claim, [{ key, modRevision: 0 }], [{ type: "put", key, value }]);
      if (res) return writtenNode(node, res[0]!);
      if (await this.store.get(key)) throw new AlreadyExistsError("node", name);
      return undefined;
    });
  }

  /**
   * Give a node created while no block was free its pod CIDRs (the IPAM controller calls this
   * when blocks free up). Answers false while no block is free for it (true when it has its
   * blocks now, or is gone).
   */
  async assignCidrs(name: string): Promise<boolean> {
    if (!this.ipam) return false;
    return this.retry(name, async () => {
      const current = await this.readNode(name);
      if (!current || current.obj.spec.podCidrs.length > 0) return true;
      const now = this.now();
      const node: FullNode = { ...current.obj, spec: { ...current.obj.spec }, status: { ...current.obj.status } };
      const claim = this.allocate(node, now);
      if (claim && claim.cidrs.length === 0) return false;
      const key = nodeKey(name);
      const value = encodeNode(node);
      checkObjectSize(value, this.maxObjectBytes);
      const res = await this.commitWithClaim(name, claim, [{ key, modRevision: current.kv.modRevision }], [{ type: "put", key, value }]);
      return res ? true : undefined;
    });
  }

  /** The store's current revision (what an informer must reach to have seen every write so far). */
  currentRevision(): Promise<number> {
    return this.store.currentRevision();
  }

  async getNode(name: string): Promise<Node> {
    checkReadName("node", name);
    const read = await this.readNode(name);
    if (!read) throw new NotFoundError("node", name);
    return this.answer(read.obj, read.kv.value);
  }

  /** Nodes matching selectors, in pages consistent with one revision. */
  listNodes(req: ListNodesRequest): Promise<ListNodesResult> {
    return listNodes(this.store, req, this.maxMessageBytes);
  }

  /**
   * Every node's Lease, in pages consistent with one revision — but for renew times, which show
   * the renewals this server answered and has not yet checkpointed.
   */
  async listLeases(req: { limit: number; continueToken: string }): ReturnType<typeof listLeases> {
    const page = await listLeases(this.store, req, this.maxMessageBytes);
    return { ...page, leases: page.leases.map((l) => this.renewals.overlay(l)) };
  }

  /** Replace spec, labels and annotations; status is ignored. */
  async updateNode(input: Node): Promise<Node> {
    const requested = fullNode(input);
    validateNode(requested, "update");
    const name = requested.metadata.name;
    const precondition = parseRevision("node.metadata.resource_version", requested.metadata.resourceVersion);
    return this.mutateNode(name, precondition, (stored, now) => {
      checkPodCidrsUnchanged(stored, requested, this.ipam !== undefined);
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
    checkWriteName(name);
    validateNodeStatus(requested.status, "status");
    const precondition = parseRevision("resource_version", resourceVersion);
    return this.mutateNode(name, precondition, (stored, now) => ({
      ...stored,
      status: {
        ...requested.status,
        conditions: stampConditions(requested.status.conditions, stored.status.conditions, now),
        addresses: keepProviderAddresses(requested.status.addresses, stored),
      },
    }));
  }

  /**
   * The cloud provider's addresses for a node (cloud sync): they replace the addresses of their
   * types, and status reports keep them from then on (keepProviderAddresses in reconcile.ts).
   */
  async setProviderAddresses(name: string, addresses: NodeAddress[], resourceVersion: string): Promise<Node> {
    checkWriteName(name);
    const violations = addresses.flatMap((a, i) => addressViolations(a, `addresses[${i}]`));
    if (violations.length > 0) throw new InvalidError(violations);
    const precondition = parseRevision("resource_version", resourceVersion);
    return this.mutateNode(name, precondition, (stored) => withProviderAddresses(stored, addresses));
  }

  /** Remove the Node and its Lease; answers the node as it was. */
  async deleteNode(name: string, resourceVersion: string): Promise<Node> {
    checkWriteName(name);
    const precondition = parseRevision("resource_version", resourceVersion);
    return this.retry(name, async () => {
      const current = await this.readNode(name);
      if (!current) throw new NotFoundError("node", name);
      checkPrecondition(name, precondition, current.kv);
      // Its blocks are freed in the same transaction.
      const blocks = this.ipam?.keysOf(current.obj.spec.podCidrs) ?? [];
      const res = await this.store.txn({
        compare: [{ key: nodeKey(name), modRevision: current.kv.modRevision }],
        ops: [
          { type: "delete", key: nodeKey(name) },
          { type: "delete", key: leaseKey(name) },
          ...blocks.map((key): Op => ({ type: "delete", key })),
        ],
      });
      if (!res.succeeded) return undefined;
      this.renewals.forget(name);
      if (blocks.length > 0) this.ipam!.release(current.obj.spec.podCidrs);
      return this.answer(current.obj, current.kv.value);
    });
  }

  /**
   * The heartbeat: create the node's Lease on first call, else renew it. A renewal (only
   * renew_time changes) of a Lease this server knows is applied in memory and made durable by
   * the next checkpoint (lease-renewals.ts states the contract); a new Lease, or a change of
   * holder or duration, is a durable write answered after its commit.
   */
  renewLease(nodeName: string, holderIdentity: string, leaseDurationSeconds: number): Promise<Lease> {
    try {
      validateLeaseRequest(nodeName, holderIdentity, leaseDurationSeconds);
    } catch (err) {
      return Promise.reject(err);
    }
    const renewal: Renewal = { holderIdentity, leaseDurationSeconds };
    // The hot path: nothing else of this node in flight here, so it cannot overtake a write.
    if (!this.serial.busy(nodeName)) {
      const renewed = this.renewals.renew(nodeName, renewal, this.clock.now());
      if (renewed) return renewed instanceof Promise ? renewed : Promise.resolve(renewed);
    }
    // A Lease exists only while its Node does (they are created and deleted together, or the
    // Lease after the Node under a compare on it), so a write to an existing Lease needs only the
    // Lease's own compare: a deleted Node took its Lease with it.
    let attempt = 0;
    // A renewal that must wait for its checkpoint is boxed: it waits outside the serializer, so
    // that renewals queued behind it ride along in the same checkpoint.
    const answer = this.retry(nodeName, async (): Promise<{ lease: Promise<Lease> | Lease } | undefined> => {
      // First from the Lease this server knows (the compare below catches any later change by
      // anyone else); after a failed compare, from the store.
      let known = attempt++ === 0 ? this.renewals.known(nodeName) : undefined;
      if (!known) {
        const read = await this.readLease(nodeName);
        if (read) {
          this.renewals.written(nodeName, read.obj, read.kv);
          known = { lease: read.obj, modRevision: read.kv.modRevision };
        }
      }
      if (known) {
        const renewed = this.renewals.renew(nodeName, renewal, this.clock.now());
        if (renewed) return { lease: renewed };
      }
      const now = this.now();
      let next: Lease;
      let compare: Compare[];
      if (known) {
        next = renewedLease(known.lease, renewal, now);
        compare = [{ key: leaseKey(nodeName), modRevision: known.modRevision }];
      } else {
        const node = await this.readNode(nodeName);
        if (!node) throw new NotFoundError("node", nodeName);
        next = newLease(node.obj, renewal, now);
        compare = [
          { key: nodeKey(nodeName), modRevision: node.kv.modRevision },
          { key: leaseKey(nodeName), modRevision: 0 },
        ];
      }
      const res = await this.store.txn({ compare, ops: [{ type: "put", key: leaseKey(nodeName), value: encodeLease(next) }] });
      if (!res.succeeded) return undefined;
      return { lease: this.renewals.written(nodeName, next, res.results[0]!) };
    });
    return answer.then((a) => a.lease);
  }

  /**
   * The hot path of renewLease alone, answered synchronously: the renewed Lease when the renewal
   * is answered at once (see lease-renewals.ts), else undefined — then call renewLease. A renewal
   * answered here needs no validation: only a Lease this server knows, renewed by its holder for
   * its duration (or with those left empty), is.
   */
  renewAtOnce(nodeName: string, holderIdentity: string, leaseDurationSeconds: number): Lease | undefined {
    if (this.serial.busy(nodeName)) return undefined;
    return this.renewals.renewAtOnce(nodeName, { holderIdentity, leaseDurationSeconds }, this.clock.now());
  }

  /** A node's Lease as stored, with the renewal this server answered since, if any. */
  async getLease(name: string): Promise<Lease> {
    checkReadName("lease", `kube-node-lease/${name}`, name);
    const read = await this.readLease(name);
    if (!read) throw new NotFoundError("lease", `kube-node-lease/${name}`);
    return this.renewals.overlay(read.obj);
  }

  private async readNode(name: string): Promise<Read<FullNode> | undefined> {
    const kv = await this.store.get(nodeKey(name));
    return kv && nodeRead(kv);
  }

  /**
   * The node informer's copy of a node as a read would answer it, without its bytes (a write
   * that changes nothing is recognised by comparing objects, and confirmed by a read: see
   * mutateNode). Undefined when the informer does not have the node (not yet seen, or none is
   * given).
   */
  private cachedNode(name: string): NodeBase | undefined {
    const obj = this.nodes?.get(name);
    const modRevision = obj ? revisionOf(obj) : 0;
    return obj && modRevision > 0 ? { obj, kv: { modRevision } } : undefined;
  }

  /** A stored node (`value`: its stored bytes) as an answer carries it: whole, or a stand-in if it is too large for one (size.ts). */
  private answer(obj: FullNode, value: Uint8Array): Node {
    const limit = answerLimitFor(this.maxMessageBytes);
    return value.length <= limit ? obj : standIn(obj, value.length, limit);
  }

  /**
   * Read every stored Lease once, in pages (the event loop answers calls between them), into the
   * Leases this server knows: after a start, a node's first renewal is then answered from memory
   * like every later one, instead of reading its Lease from the store first. (At 100,000 agents
   * reconnecting at once those reads are random SQLite lookups of ~45 µs each, and the backlog
   * they make holds the first renewals back by seconds.)
   *
   * Each Lease is taken as a read would take it: a stale one (changed by another server since)
   * costs its first checkpoint a failed compare and a rebase, as any stale knowledge does. It is
   * taken only if `nodes`, once it has seen the page's revision, still has its node: a node
   * deleted later is forgotten when `nodes` sees the delete (core.ts subscribes forget to it), so
   * no renewal of a deleted node is answered from memory. Leases this server already knows
   * (written or read since) stay as they are, and a stored Lease that does not decode is left
   * out. It stops early when `signal` aborts, the store fails or `nodes` stops; renewals of the
   * Leases not loaded read them first, as before.
   * Answers how many Leases it loaded.
   */
  async loadLeases(nodes: { get(name: string): unknown; waitFor(revision: number): Promise<boolean> }, signal: AbortSignal): Promise<number> {
    let loaded = 0;
    if (signal.aborted) return loaded;
    for await (const page of pages(this.store, LEASE_PREFIX, { limit: LEASE_LOAD_PAGE })) {
      if (!(await nodes.waitFor(page.revision)) || signal.aborted) return loaded;
      for (const kv of page.kvs) {
        const name = kv.key.slice(LEASE_PREFIX.length);
        if (this.renewals.knows(name) || nodes.get(name) === undefined) continue;
        let lease: Lease;
        try {
          lease = decodeLease(kv);
        } catch {
          continue; // left to its first renewal, which reads it (and fails) as before
        }
        this.renewals.written(name, lease, kv);
        loaded++;
      }
      if (signal.aborted) return loaded;
    }
    return loaded;
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
      spec: {
        ...requested.spec,
        // Copies of the configured taints: the node is answered as it is, and callers own the answer.
        taints: stampTaints([...requested.spec.taints, ...this.newNodeTaints.filter((t) => !requested.spec.taints.some((r) => r.key === t.key && r.effect === t.effect)).map((t) => ({ ...t }))], [], now),
      },
      status: { ...requested.status, conditions: stampConditions(requested.status.conditions, [], now) },
    };
  }

  /**
   * Blocks for a new node (its own pod CIDRs, checked, or free ones), set into its spec; when a
   * family has none free, the node says so in a NetworkUnavailable condition.
   */
  private allocate(node: FullNode, now: Date): Claim | undefined {
    if (!this.ipam) return undefined;
    const preset = node.spec.podCidrs.length > 0 ? node.spec.podCidrs : node.spec.podCidr ? [node.spec.podCidr] : [];
    const claim = this.ipam.claim(preset);
    node.spec.podCidrs = claim.cidrs;
    node.spec.podCidr = claim.cidrs[0] ?? "";
    const others = node.status.conditions.filter((c) => c.type !== "NetworkUnavailable");
    if (claim.exhausted.length > 0) {
      const message = cidrNotAvailableMessage(this.ipam, claim.exhausted);
      node.status.conditions = [
        ...others,
        { type: "NetworkUnavailable", status: "True", reason: "CIDRNotAvailable", message, lastHeartbeatTime: now, lastTransitionTime: now },
      ];
    } else if (node.status.conditions.some((c) => c.reason === "CIDRNotAvailable")) {
      node.status.conditions = [
        ...others,
        { type: "NetworkUnavailable", status: "False", reason: "CIDRAssigned", message: `pod CIDRs ${claim.cidrs.join(",")} assigned`, lastHeartbeatTime: now, lastTransitionTime: now },
      ];
    }
    return claim;
  }

  /**
   * Commit a node write together with its claimed blocks (each block key must not exist yet).
   * Answers the per-op results, or undefined when a compare failed (the claim is given back,
   * and blocks someone else holds are marked used so the next attempt takes others).
   */
  private async commitWithClaim(name: string, claim: Claim | undefined, compare: Compare[], ops: Op[]): Promise<(KeyValue | undefined)[] | undefined> {
    const keys = claim?.keys ?? [];
    const value = new TextEncoder().encode(name);
    const res = await this.store.txn({
      compare: [...compare, ...keys.map((key) => ({ key, modRevision: 0 }))],
      ops: [...ops, ...keys.map((key): Op => ({ type: "put", key, value }))],
    });
    if (res.succeeded) {
      if (claim && claim.exhausted.length > 0) await this.ipam!.exhausted(name, claim.exhausted);
      return res.results;
    }
    if (claim) {
      this.ipam!.abandon(claim);
      res.current.slice(compare.length).forEach((kv, i) => {
        if (kv) this.ipam!.markKey(keys[i]!, true);
      });
    }
    return undefined;
  }

  /**
   * Read-modify-write of one node under CAS; with a client precondition a conflict is final.
   * Without one, the first attempt starts from the node informer's copy (cachedNode); after a
   * failed compare the next starts from the current value the store answered it with, so a stale
   * copy costs no more store calls than a read would have (on etcd the informer hears of a write
   * only after it is answered: back-to-back writes of one node often find the copy one behind).
   * A write that changes nothing against the copy is judged again against a read.
   * `change` must not modify the node it is given (the informer's is frozen and shared).
   */
  private mutateNode(
    name: string,
    precondition: number | undefined,
    change: (stored: FullNode, now: Date) => FullNode,
  ): Promise<Node> {
    let first = true;
    let known: NodeBase | undefined;
    return this.retry(name, async () => {
      // Taken when the attempt runs, not when it was queued behind other writes of the node.
      if (first && precondition === undefined) known = this.cachedNode(name);
      first = false;
      const current = known ?? (await this.readNode(name));
      known = undefined;
      if (!current) throw new NotFoundError("node", name);
      checkPrecondition(name, precondition, current.kv);
      const next = change(current.obj, this.now());
      // Nothing changes: answered without a write. Compared as objects first, so that the
      // informer's copy is never encoded for it (the node's bytes, when read, catch the rest).
      // Only a stored node can say so: the informer's copy may be behind the store (on etcd
      // often one write behind), and "no change" from an old copy would lose this write. So a
      // copy that finds nothing to change sends the next attempt to read the node.
      if (sameMessage(next, current.obj)) return current.kv.value === undefined ? undefined : this.answer(current.obj, current.kv.value);
      const value = encodeNode(next);
      if (current.kv.value && sameBytes(value, current.kv.value)) return this.answer(current.obj, current.kv.value);
      checkObjectSize(value, this.maxObjectBytes);
      const req: TxnRequest = {
        compare: [{ key: nodeKey(name), modRevision: current.kv.modRevision }],
        ops: [{ type: "put", key: nodeKey(name), value }],
      };
      const res = await this.store.txn(req);
      if (res.succeeded) return writtenNode(next, res.results[0]!);
      const kv = res.current[0];
      known = kv && nodeRead(kv);
      return undefined;
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

/**
 * The `name` of a write (UpdateStatus, DeleteNode) must be a node name, as a Register's is:
 * INVALID_ARGUMENT naming the rule, not NOT_FOUND.
 */
function checkWriteName(name: string): void {
  const rules = dns1123SubdomainViolations(name);
  if (rules.length > 0) throw new InvalidError(rules.map((rule) => ({ field: "name", value: name, rule })));
}

/**
 * A read (GetNode, GetLease) with no name is INVALID_ARGUMENT (the caller forgot it); one with a
 * name no node can have is NOT_FOUND, as Kubernetes answers a GET, saying why it cannot exist.
 */
function checkReadName(what: string, shown: string, name = shown): void {
  if (name === "") throw InvalidError.of("name", name, "must not be empty: name the node");
  const rules = dns1123SubdomainViolations(name);
  if (rules.length > 0) throw new NotFoundError(what, shown, `not a valid node name: it ${rules.join("; ")}`);
}

/** A stored node decoded, with its key's store metadata. */
function nodeRead(kv: KeyValue): Read<FullNode> {
  return { obj: fullNode(decodeNode(kv)), kv };
}

function checkPrecondition(name: string, precondition: number | undefined, kv: Pick<KeyValue, "modRevision">): void {
  if (precondition !== undefined && precondition !== kv.modRevision) {
    throw new ConflictError("node", name, formatRevision(precondition), formatRevision(kv.modRevision));
  }
}

/** pod_cidrs are set at creation (or by the allocator) and never changed afterwards. */
function checkPodCidrsUnchanged(stored: FullNode, requested: FullNode, allocating: boolean): void {
  const before = stored.spec.podCidrs.join(",");
  const after = requested.spec.podCidrs.join(",");
  if (before === after) return;
  if (before !== "") {
    throw InvalidError.of("spec.pod_cidrs", after, `is immutable once set (it is ${before})`);
  }
  if (allocating) {
    throw InvalidError.of("spec.pod_cidrs", after, "is allocated by the server (--allocate-node-cidrs); set it at creation or leave it empty");
  }
}

function specChanged(before: FullNode, after: FullNode): boolean {
  return !sameBytes(NodeSpec.encode(before.spec).finish(), NodeSpec.encode(after.spec).finish());
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
