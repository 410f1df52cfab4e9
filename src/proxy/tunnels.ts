/**
 * The server's side of agents' reverse tunnels (nodeplane.v1.AgentTunnelService/Connect): for a
 * node the control plane cannot dial, the agent opens the stream on its own mTLS connection and
 * the server sends its calls down it — Konnectivity's idea at the RPC level (the stream is
 * already end-to-end TLS, so no TCP relay is needed).
 *
 * Admission: the gate has authorized the stream for a node identity (nodes/tunnel, own node
 * only); here the first message must be a hello naming that same node, within 10 s. Anything
 * else ends the stream (PERMISSION_DENIED or INVALID_ARGUMENT) and is logged. The server
 * confirms with an empty message (id 0). One tunnel per node: a newer one replaces the older.
 *
 * Calls carry increasing ids; each waits for the answer with the same id until its deadline.
 * When a tunnel ends, its waiting calls fail with UnavailableError naming the node.
 */
import * as grpc from "@grpc/grpc-js";
import { InvalidError, NodeplaneError, PermissionDeniedError, UnavailableError } from "../errors.js";
import type { AgentTunnelServiceServer, ConnectRequest, ConnectResponse, TunnelAnswer } from "../gen/nodeplane/v1/node_proxy.js";
import type { Identity } from "../auth/identity.js";
import { describeIdentity } from "../auth/identity.js";
import type { Calls } from "../server/calls.js";
import type { AgentAnswer, AgentCall, AgentCallName } from "./agent-calls.js";

export interface TunnelsOptions {
  /** The verified identity of a call (the gate's); undefined when authentication is off. */
  identityOf: (metadata: grpc.Metadata) => Identity | undefined;
  calls: Calls;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** How long an opened stream may take to say hello (default 10 s). */
  helloTimeoutMs?: number;
}

interface Waiting {
  resolve(answer: TunnelAnswer): void;
  reject(err: Error): void;
}

type Stream = grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>;

class Tunnel {
  private nextId = 1n;
  readonly waiting = new Map<bigint, Waiting>();

  constructor(
    readonly node: string,
    readonly stream: Stream,
  ) {}

  send(call: Omit<ConnectResponse, "id">, deadline: Date): Promise<TunnelAnswer> {
    const id = this.nextId++;
    return new Promise<TunnelAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new UnavailableError(`node ${JSON.stringify(this.node)}: its agent did not answer over its reverse tunnel in time (--agent-timeout)`));
      }, Math.max(0, deadline.getTime() - Date.now()));
      this.waiting.set(id, {
        resolve: (a) => (clearTimeout(timer), resolve(a)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.stream.write({ id, ...call });
    });
  }

  answered(answer: TunnelAnswer): void {
    const w = this.waiting.get(answer.id);
    this.waiting.delete(answer.id);
    w?.resolve(answer);
  }

  fail(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}

export class Tunnels {
  private readonly open = new Map<string, Tunnel>();

  constructor(private readonly o: TunnelsOptions) {}

  /** Whether `node`'s agent holds a tunnel open now. */
  has(node: string): boolean {
    return this.open.has(node);
  }

  /**
   * Send one call down `node`'s tunnel.
   * @throws UnavailableError (no tunnel, it closed, no answer by the deadline); the agent's own error as it answered it.
   */
  async call<K extends AgentCallName>(node: string, name: K, req: AgentCall[K], deadline: Date): Promise<AgentAnswer[K]> {
    const tunnel = this.open.get(node);
    if (!tunnel) throw new UnavailableError(`node ${JSON.stringify(node)}: no reverse tunnel open`);
    const answer = await tunnel.send({ [name]: req }, deadline);
    if (answer.error) {
      const code = grpc.status[answer.error.code] ?? String(answer.error.code);
      throw new UnavailableError(`node ${JSON.stringify(node)}: its agent answered over the reverse tunnel ${code}: ${answer.error.message}`);
    }
    const result = answer[name];
    if (!result) throw new UnavailableError(`node ${JSON.stringify(node)}: its agent answered a ${name} call with something else (an agent of another version?)`);
    return result as AgentAnswer[K];
  }

  /** End every tunnel (shutdown): agents reopen theirs on the next server. */
  closeAll(): void {
    for (const t of [...this.open.values()]) t.stream.emit("error", { code: grpc.status.UNAVAILABLE, details: "the server is shutting down" });
  }

  service(): AgentTunnelServiceServer {
    return { connect: (stream) => this.connect(stream) };
  }

  private connect(stream: Stream): void {
    const rec = this.o.calls.begin("Connect", stream.getPeer(), { timed: false });
    let tunnel: Tunnel | undefined;
    let ended = false;
    const end = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      clearTimeout(helloTimer);
      if (tunnel) {
        tunnel.fail(new UnavailableError(`node ${JSON.stringify(tunnel.node)}: its reverse tunnel closed`));
        if (this.open.get(tunnel.node) === tunnel) this.open.delete(tunnel.node);
        this.o.log.info({ node: tunnel.node, peer: stream.getPeer() }, "reverse tunnel closed");
      }
      if (err === undefined) {
        rec.ok("CANCELLED");
        return;
      }
      const status = rec.fail(err);
      if (!stream.cancelled) stream.emit("error", status);
    };
    const helloTimer = setTimeout(() => end(InvalidError.of("hello", "", `the first message must be a hello naming the node, within ${(this.o.helloTimeoutMs ?? 10_000) / 1000}s`)), this.o.helloTimeoutMs ?? 10_000);
    stream.on("data", (msg: ConnectRequest) => {
      if (ended) return;
      if (tunnel) {
        if (msg.answer) tunnel.answered(msg.answer);
        else end(InvalidError.of("hello", msg.hello?.nodeName ?? "", "a tunnel says hello once, then sends only answers"));
        return;
      }
      try {
        tunnel = this.admit(stream, msg);
      } catch (err) {
        if (err instanceof NodeplaneError) this.o.log.warn({ peer: stream.getPeer(), refused: err.message }, "reverse tunnel refused");
        end(err);
        return;
      }
      clearTimeout(helloTimer);
      const older = this.open.get(tunnel.node);
      this.open.set(tunnel.node, tunnel);
      older?.stream.emit("error", { code: grpc.status.ABORTED, details: "a newer tunnel from the same node replaced this one" });
      stream.write({ id: 0n });
      this.o.log.info({ node: tunnel.node, peer: stream.getPeer() }, "reverse tunnel open");
    });
    stream.on("end", () => {
      end();
      stream.end();
    });
    stream.on("cancelled", () => end());
    stream.on("error", () => end());
  }

  /** The tunnel for a hello from the node itself. @throws PermissionDeniedError, InvalidError. */
  private admit(stream: Stream, msg: ConnectRequest): Tunnel {
    const hello = msg.hello;
    if (!hello) throw InvalidError.of("hello", "", "the first message of a tunnel must be a hello naming the node");
    const identity = this.o.identityOf(stream.metadata);
    if (!identity) throw new PermissionDeniedError("reverse tunnels need authentication on the server (--tls): without it, no caller can prove which node it is");
    if (identity.nodeName !== hello.nodeName) {
      throw new PermissionDeniedError(`${describeIdentity(identity)} may not open a reverse tunnel for node ${JSON.stringify(hello.nodeName)}: only a node may, for itself`);
    }
    return new Tunnel(hello.nodeName, stream);
  }
}
