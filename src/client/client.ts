/**
 * NodeClient: a typed promise API over NodeService. Every call takes a deadline (default
 * 30 s for unary calls) and an AbortSignal; watch() is an AsyncIterable that ends when the
 * server ends the stream and throws typed errors (src/client/errors.ts). Given several
 * addresses (replicas), it fails over between them (src/client/endpoints.ts).
 */
import * as grpc from "@grpc/grpc-js";
import type { Event } from "../gen/nodeplane/v1/event.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import { type DeepPartial, Node, NodeStatus } from "../gen/nodeplane/v1/node.js";
import {
  ListNodesRequest,
  type ListNodesResponse,
  type RegisterResponse,
  NodeServiceService as S,
  WatchRequest,
} from "../gen/nodeplane/v1/service.js";
import { Endpoints, neverSent, parseEndpoints, replicaFailed } from "./endpoints.js";
import { AgentTunnelServiceService, type ConnectRequest, type ConnectResponse } from "../gen/nodeplane/v1/node_proxy.js";
import { CancelledError, fromServiceError, isServiceError, type RpcError } from "./errors.js";

export interface NodeClientOptions {
  /** Channel credentials (default: insecure, for loopback); TLS with a client certificate: grpc.credentials.createSsl(ca, key, cert). */
  credentials?: grpc.ChannelCredentials;
  /** A bearer token, sent as `authorization: Bearer <token>` with every call. */
  token?: string;
  /** Default deadline of unary calls in ms (default 30 000). */
  timeoutMs?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ClientOptions;
  /** With several addresses, start at a random one (default true: a fleet spreads over the replicas). */
  shuffle?: boolean;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Deadline for this call in ms (unary: default the client's; watch: none). */
  timeoutMs?: number;
}

export interface PreconditionOptions extends CallOptions {
  /** Fail with AbortedError unless the node's resource_version is this. */
  resourceVersion?: string;
}

export interface RenewOptions extends CallOptions {
  holderIdentity?: string;
  /** 0 = keep the current duration (40 s for a new lease). */
  leaseDurationSeconds?: number;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

export interface WatchEvent {
  type: WatchEventType;
  /** For BOOKMARK only metadata.resourceVersion is set. */
  node: Node;
  /** The event's revision (for BOOKMARK the revision it vouches for). */
  resourceVersion: string;
}

export type NodeInput = DeepPartial<Node>;

export interface HeartbeatResult {
  lease: Lease;
  /** How long the server wants the agent to wait before renewing again (ms). */
  nextRenewIntervalMs: number;
}

export interface HeartbeatStream {
  renew(nodeName: string, renewal?: { holderIdentity?: string; leaseDurationSeconds?: number }): Promise<HeartbeatResult>;
  close(): void;
}

/** Nodes per ListNodes page when listing everything. */
const DEFAULT_PAGE_SIZE = 500;

interface MethodDef<Req, Res> {
  path: string;
  requestSerialize: (value: Req) => Buffer;
  responseDeserialize: (value: Buffer) => Res;
}

export class NodeClient {
  /** Every address given, comma-separated. */
  readonly address: string;
  private readonly endpoints: Endpoints;
  private readonly timeoutMs: number;

  /**
   * `address` is host:port, e.g. "127.0.0.1:50051", or several replicas of one cluster:
   * "a:50051,b:50051" or ["a:50051", "b:50051"].
   */
  constructor(
    address: string | readonly string[],
    private readonly opts: NodeClientOptions = {},
  ) {
    const list = parseEndpoints(address);
    this.address = list.join(",");
    const credentials = opts.credentials ?? grpc.credentials.createInsecure();
    this.endpoints = new Endpoints(list, (a) => new grpc.Client(a, credentials, opts.channelOptions), opts.shuffle ?? true);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** The address calls go to now (it moves on when a replica fails). */
  get endpoint(): string {
    return this.endpoints.address;
  }

  /**
   * Use new channel credentials from now on (a renewed client certificate): later calls go over
   * new connections; calls in flight finish on the old ones, which are then closed.
   */
  useCredentials(credentials: grpc.ChannelCredentials): void {
    this.endpoints.reconnect((a) => new grpc.Client(a, credentials, this.opts.channelOptions));
  }

  register(node: NodeInput, opts?: CallOptions): Promise<RegisterResponse> {
    return this.unary(S.register, { node: Node.fromPartial(node) }, opts);
  }

  async createNode(node: NodeInput, opts?: CallOptions): Promise<Node> {
    return must((await this.unary(S.createNode, { node: Node.fromPartial(node) }, opts)).node);
  }

  async getNode(name: string, opts?: CallOptions): Promise<Node> {
    return must((await this.unary(S.getNode, { name }, opts)).node);
  }

  listNodes(req: Partial<ListNodesRequest> = {}, opts?: CallOptions): Promise<ListNodesResponse> {
    return this.unary(S.listNodes, ListNodesRequest.fromPartial(req), opts);
  }

  /**
   * Every node matching the selectors, in pages of `req.limit` (default 500) following continue
   * tokens: every page is consistent with the first page's revision, which is answered. One
   * unpaged answer would not fit in a message beyond a few thousand nodes.
   */
  async listAllNodes(req: Partial<ListNodesRequest> = {}, opts?: CallOptions): Promise<{ nodes: Node[]; resourceVersion: string }> {
    const nodes: Node[] = [];
    let continueToken = "";
    const limit = req.limit || DEFAULT_PAGE_SIZE;
    for (;;) {
      const page = await this.listNodes({ ...req, limit, continueToken }, opts);
      nodes.push(...page.nodes);
      if (!page.continueToken) return { nodes, resourceVersion: page.resourceVersion };
      continueToken = page.continueToken;
    }
  }

  /** Replace spec, labels and annotations; node.metadata.resourceVersion, if set, is a precondition. */
  async updateNode(node: NodeInput, opts?: CallOptions): Promise<Node> {
    return must((await this.unary(S.updateNode, { node: Node.fromPartial(node) }, opts)).node);
  }

  async updateStatus(name: string, status: DeepPartial<NodeStatus>, opts?: PreconditionOptions): Promise<Node> {
    const req = { name, status: NodeStatus.fromPartial(status), resourceVersion: opts?.resourceVersion ?? "" };
    return must((await this.unary(S.updateStatus, req, opts)).node);
  }

  /** Delete a node and its Lease; answers the node as it was. */
  async deleteNode(name: string, opts?: PreconditionOptions): Promise<Node> {
    return must((await this.unary(S.deleteNode, { name, resourceVersion: opts?.resourceVersion ?? "" }, opts)).node);
  }

  async renewLease(nodeName: string, opts?: RenewOptions): Promise<Lease> {
    const req = { nodeName, holderIdentity: opts?.holderIdentity ?? "", leaseDurationSeconds: opts?.leaseDurationSeconds ?? 0 };
    return must((await this.unary(S.renewLease, req, opts)).lease);
  }

  async getLease(name: string, opts?: CallOptions): Promise<Lease> {
    return must((await this.unary(S.getLease, { name }, opts)).lease);
  }

  /** Every node's Lease (following continue tokens). */
  async listLeases(opts?: CallOptions): Promise<Lease[]> {
    const leases: Lease[] = [];
    let continueToken = "";
    for (;;) {
      const page = await this.unary(S.listLeases, { limit: 1000, continueToken }, opts);
      leases.push(...page.leases);
      if (!page.continueToken) return leases;
      continueToken = page.continueToken;
    }
  }

  /** Events recorded about a node ("" = every node), oldest first. */
  async listEvents(nodeName = "", opts?: CallOptions): Promise<Event[]> {
    return (await this.unary(S.listEvents, { nodeName }, opts)).events;
  }

  /**
   * Node changes as an async iterable. Ends when the server ends the stream; throws a typed
   * error (OutOfRangeError: list again; ResourceExhaustedError / UnavailableError: watch again
   * from the last resourceVersion received). Breaking out of the loop or aborting cancels it.
   */
  async *watch(req: Partial<WatchRequest> = {}, opts: CallOptions = {}): AsyncGenerator<WatchEvent> {
    if (opts.signal?.aborted) throw cancelled();
    const options: grpc.CallOptions = opts.timeoutMs ? { deadline: Date.now() + opts.timeoutMs } : {};
    for (let attempt = 1; ; attempt++) {
      const { client, index } = this.endpoints.pick();
      const stream = client.makeServerStreamRequest(
        S.watch.path,
        S.watch.requestSerialize,
        S.watch.responseDeserialize,
        WatchRequest.fromPartial(req),
        this.metadata(),
        options,
      );
      const onAbort = (): void => stream.cancel();
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      let received = false;
      try {
        for await (const msg of stream as AsyncIterable<ReturnType<typeof S.watch.responseDeserialize>>) {
          received = true;
          yield { type: msg.type as WatchEventType, node: msg.node ?? Node.fromPartial({}), resourceVersion: msg.resourceVersion };
        }
        return;
      } catch (err) {
        if (replicaFailed(err)) this.endpoints.failed(index);
        // Not a single message and no connection: the next replica is asked the same.
        if (!received && neverSent(err) && attempt < this.endpoints.list.length) continue;
        throw toRpcError(err);
      } finally {
        opts.signal?.removeEventListener("abort", onAbort);
        stream.cancel();
      }
    }
  }

  /**
   * Open a streaming heartbeat (one per agent): `renew()` sends a renewal and resolves with the
   * committed Lease and the interval the server wants before the next one. Renewals are answered
   * in order. The stream fails with a typed error (NotFoundError: register again;
   * UnavailableError: reconnect); `close()` ends it.
   */
  heartbeat(opts: CallOptions = {}): HeartbeatStream {
    const { client, index } = this.endpoints.pick();
    const stream = client.makeBidiStreamRequest(
      S.heartbeat.path,
      S.heartbeat.requestSerialize,
      S.heartbeat.responseDeserialize,
      this.metadata(),
      {},
    );
    const waiting: { resolve(r: HeartbeatResult): void; reject(e: unknown): void }[] = [];
    let failure: unknown;
    const fail = (err: unknown): void => {
      // The next stream (the agent opens one when this one fails) goes to another replica.
      if (failure === undefined && replicaFailed(err)) this.endpoints.failed(index);
      failure ??= toRpcError(err);
      for (const w of waiting.splice(0)) w.reject(failure);
    };
    stream.on("data", (res: ReturnType<typeof S.heartbeat.responseDeserialize>) => {
      const interval = res.nextRenewInterval;
      waiting.shift()?.resolve({
        lease: must(res.lease),
        nextRenewIntervalMs: interval ? Number(interval.seconds) * 1000 + Math.round(interval.nanos / 1e6) : 0,
      });
    });
    stream.on("error", fail);
    stream.on("end", () => fail(new CancelledError(grpc.status.CANCELLED, "the heartbeat stream ended")));
    const onAbort = (): void => stream.cancel();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    return {
      renew: (nodeName, renewal = {}) =>
        new Promise<HeartbeatResult>((resolve, reject) => {
          if (failure !== undefined) return reject(failure);
          waiting.push({ resolve, reject });
          stream.write({ nodeName, holderIdentity: renewal.holderIdentity ?? "", leaseDurationSeconds: renewal.leaseDurationSeconds ?? 0 });
        }),
      close: () => {
        opts.signal?.removeEventListener("abort", onAbort);
        stream.end();
        stream.cancel();
      },
    };
  }

  /**
   * Open the agent's reverse tunnel (nodeplane.v1.AgentTunnelService/Connect) on this client's
   * connection: the agent writes a hello, then answers the calls the server sends (src/agent/tunnel.ts).
   */
  openTunnel(): grpc.ClientDuplexStream<ConnectRequest, ConnectResponse> {
    const def = AgentTunnelServiceService.connect;
    // On the replica calls go to now: only that replica's proxy uses this tunnel (the others dial).
    return this.endpoints.pick().client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, this.metadata(), {});
  }

  /** Resolves once a connection to (one of) the server(s) is up, or rejects after `timeoutMs`. */
  waitForReady(timeoutMs = 10_000): Promise<void> {
    return this.endpoints.waitForReady(timeoutMs);
  }

  close(): void {
    this.endpoints.close();
  }

  /** Call metadata: the bearer token, when there is one. */
  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set("authorization", `Bearer ${this.opts.token}`);
    return md;
  }

  /** One call, sent again to the next replica while it provably reached none (see endpoints.ts). */
  protected async unary<Req, Res>(def: MethodDef<Req, Res>, req: Req, opts: CallOptions = {}): Promise<Res> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.timeoutMs);
    for (let attempt = 1; ; attempt++) {
      const { client, index } = this.endpoints.pick();
      try {
        return await unaryOn(client, def, req, this.metadata(), deadline, opts.signal);
      } catch (err) {
        if (replicaFailed(err)) this.endpoints.failed(index);
        if (!(neverSent(err) && attempt < this.endpoints.list.length && !opts.signal?.aborted)) throw toRpcError(err);
      }
    }
  }
}

function unaryOn<Req, Res>(client: grpc.Client, def: MethodDef<Req, Res>, req: Req, md: grpc.Metadata, deadline: number, signal: AbortSignal | undefined): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const onAbort = (): void => call.cancel();
    const call = client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, req, md, { deadline }, (err, res) => {
      signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(res as Res);
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function cancelled(): RpcError {
  return new CancelledError(grpc.status.CANCELLED, "the call was aborted by its AbortSignal");
}

function toRpcError(err: unknown): unknown {
  return isServiceError(err) ? fromServiceError(err) : err;
}

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("the server answered without the expected object");
  return value;
}
