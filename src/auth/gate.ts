/**
 * The gate every RPC passes through (a grpc-js server interceptor, so reflection and the auth
 * service are covered as much as NodeService): authenticate, rate-limit, authorize, apply
 * NodeRestriction, count streams, and write the audit line. Handlers run only for admitted
 * calls, and a refused call reads nothing beyond what the decision needs: an authorization
 * decision never looks at the store, so a refusal cannot tell whether its object exists.
 *
 * Stages (grpc-js delivers them in order, each waiting for the previous one):
 * - metadata: who is calling (the connection's client certificate, else the `authorization`
 *   metadata, which is then removed so no handler sees it); anonymous callers are refused
 *   when authentication is on; the per-identity rate; streams admitted at their start
 *   (Heartbeat, reflection) are authorized here, and counted;
 * - message (unary and Watch): authorize the request's verb/resource/name; the size limit for
 *   nodes; for node writes the stored Node is read for NodeRestriction, and for audited writes
 *   the object's revision before;
 * - response and status: the audit line, with the revision after.
 *
 * Heartbeat renewals arrive as messages of an already running handler, so they are admitted by
 * `admitRenewal`, which the heartbeat handler calls for each (a refusal ends that stream).
 * Health checks are never intercepted.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { Clock } from "../clock.js";
import { PermissionDeniedError, UnauthenticatedError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { decodeNode } from "../model/codec.js";
import { leaseKey, nodeKey } from "../model/keys.js";
import type { Store } from "../store/store.js";
import { wireSize } from "../server/call-guard.js";
import { codeName, toServiceError } from "../server/errors.js";
import type { AccessControl } from "./access.js";
import type { AuditLog } from "./audit.js";
import type { Identity } from "./identity.js";
import type { IdentityLimits } from "./limits.js";
import type { PeerCredentials } from "./listener.js";
import { admitNodeWrite, type NodeWrite } from "./node-restriction.js";
import { PUBLIC_METHODS, RPC_TABLE, type RpcAccess, shortMethod, startName } from "./rpc-table.js";

export interface GateOptions {
  access: AccessControl;
  /** Per-identity limits (with authentication on). */
  limits?: IdentityLimits;
  audit?: AuditLog;
  store: Store;
  clock: Clock;
  metrics: Registry;
  log: Logger;
}

/** An audit line waiting for the call's answer. */
interface Pending {
  access: RpcAccess;
  name: string;
  revisionBefore: string;
}

interface CallState {
  identity: Identity;
  path: string;
  peer: string;
  pending: Pending[];
}

const NODE_WRITES: Partial<Record<string, NodeWrite>> = {
  "/nodeplane.v1.NodeService/Register": "Register",
  "/nodeplane.v1.NodeService/CreateNode": "CreateNode",
  "/nodeplane.v1.NodeService/UpdateNode": "UpdateNode",
};

type Message = Record<string, unknown>;


export class AuthGate {
  /** The state of every admitted call, by the Metadata object its handler receives. */
  private readonly calls = new WeakMap<grpc.Metadata, CallState>();
  private readonly refused: Counter<"method" | "code">;
  /** The listener calls arrive on, for the client certificate of a call's connection. */
  private listener: PeerCredentials | undefined;

  constructor(private readonly o: GateOptions) {
    this.refused = new Counter({
      name: "nodeplane_auth_refused_total",
      help: "Calls refused before their handler ran (authentication, authorization, NodeRestriction, per-identity limits), by method and code.",
      labelNames: ["method", "code"] as const,
      registers: [o.metrics],
    });
  }

  /** Set once the port is bound (before any call can arrive). */
  attach(listener: PeerCredentials): void {
    this.listener = listener;
  }

  /** Whether calls need intercepting at all (authentication on, or an audit log). */
  get active(): boolean {
    return this.o.access.enabled || this.o.audit !== undefined;
  }

  /** The identity of an admitted call, from the metadata its handler was given. */
  identityOf(metadata: grpc.Metadata): Identity | undefined {
    return this.calls.get(metadata)?.identity;
  }

  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    if (!this.active || PUBLIC_METHODS.has(method.path)) return new grpc.ServerInterceptingCall(call);
    const access = RPC_TABLE[method.path];
    let state: CallState | undefined;
    let release: (() => void) | undefined;
    let finished = false;
    const refuse = (err: unknown): void => {
      if (finished) return;
      finished = true;
      release?.();
      const mapped = toServiceError(err, "-");
      if (mapped.internal) this.o.log.error({ err, method: method.path }, "internal error while admitting a call");
      this.refused.inc({ method: shortMethod(method.path), code: codeName(mapped.code) });
      this.o.log.debug({ method: method.path, code: codeName(mapped.code), user: state?.identity.user, peer: call.getPeer() }, "call refused");
      call.sendStatus({ code: mapped.code, details: mapped.error.details ?? mapped.error.message, metadata: mapped.error.metadata });
    };
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        this.admitCall(method.path, access, call, metadata).then(
          (admitted) => {
            state = admitted.state;
            release = admitted.release;
            this.calls.set(metadata, state);
            next(metadata);
          },
          refuse,
        );
      })
      .withOnReceiveMessage((message: Message, next) => {
        if (!state || !access || access.atStart) return next(message);
        this.admitMessage(state, access, true, message).then(() => next(message), (err: unknown) => {
          if (state && access.mutating) this.auditRefusal(state, access, message, err);
          refuse(err);
        });
      })
      .withOnCancel(() => {
        release?.();
        if (state) this.flush(state, "CANCELLED");
      })
      .build();
    const responder = new grpc.ResponderBuilder()
      .withStart((next) => next(listener))
      .withSendMessage((message: unknown, next) => {
        const pending = state?.pending.shift();
        if (state && pending) this.record(state, pending, "OK", revisionAfter(pending.access, message));
        next(message);
      })
      .withSendStatus((status, next) => {
        finished = true;
        release?.();
        if (state) this.flush(state, codeName(status.code));
        next(status);
      })
      .build();
    return new grpc.ServerInterceptingCall(call, responder);
  };

  /**
   * Admit one renewal on a Heartbeat stream (called by the heartbeat handler for each):
   * the identity's rate, its right to renew this node's Lease, the audit line's revision before.
   * @throws the error that ends the stream.
   */
  async admitRenewal(metadata: grpc.Metadata, req: { nodeName: string }): Promise<void> {
    const state = this.calls.get(metadata);
    const access = RPC_TABLE[state?.path ?? ""];
    if (!state || !access) return;
    const message = req as unknown as Message;
    try {
      await this.admitMessage(state, access, false, message);
    } catch (err) {
      this.auditRefusal(state, access, message, err);
      throw err;
    }
  }

  private async admitCall(
    path: string,
    access: RpcAccess | undefined,
    call: grpc.ServerInterceptingCallInterface,
    metadata: grpc.Metadata,
  ): Promise<{ state: CallState; release?: () => void }> {
    const header = metadata.get("authorization")[0];
    metadata.remove("authorization");
    const credentials = { ...this.listener?.credentialsOf(call), ...(typeof header === "string" ? { authorization: header } : {}) };
    const identity = await this.o.access.requireIdentity(credentials);
    const state: CallState = { identity, path, peer: call.getPeer(), pending: [] };
    if (!this.o.access.enabled) return { state };
    this.o.limits?.take(identity);
    if (!access) {
      // Not in the table (a service added later and forgotten): operators only.
      const denied = this.o.access.authorize(identity, "create", "bootstraptokens", "");
      if (denied) throw new PermissionDeniedError(`${denied.message.split(" cannot ")[0]} cannot call ${path}`);
      return { state };
    }
    if (access.atStart) this.authorize(identity, access, startName(identity));
    const release = access.stream ? this.o.limits?.openStream(identity) : undefined;
    return { state, release };
  }

  /** `measure`: check the request's size (as received: see wireSize) against the identity's limit. */
  private async admitMessage(state: CallState, access: RpcAccess, measure: boolean, message: Message): Promise<void> {
    const { identity } = state;
    const name = access.name(message);
    if (this.o.access.enabled) {
      if (identity.expiresAt !== undefined && identity.expiresAt <= this.o.clock.now()) {
        throw new UnauthenticatedError(`the credential of user ${JSON.stringify(identity.user)} expired at ${new Date(identity.expiresAt).toISOString()}; reconnect with a renewed one`);
      }
      if (access.atStart) this.o.limits?.take(identity); // each message of a stream admitted at its start counts
      this.authorize(identity, access, name);
      const size = measure ? wireSize(message) : undefined;
      if (size !== undefined && this.o.limits) this.o.limits.checkSize(identity, size);
    }
    if (!access.mutating) return;
    const write = NODE_WRITES[state.path];
    const restricted = this.o.access.enabled && identity.nodeName !== undefined && write !== undefined;
    let revisionBefore = "";
    if (restricted || this.o.audit) {
      const key = access.resource === "leases" ? leaseKey(name) : access.resource.startsWith("nodes") ? nodeKey(name) : undefined;
      const kv = key && name ? await this.o.store.get(key) : undefined;
      if (key && name) revisionBefore = kv ? String(kv.modRevision) : "0";
      if (restricted) {
        const stored: Node | undefined = kv && access.resource === "nodes" ? decodeNode(kv) : undefined;
        const denied = admitNodeWrite(identity, write, message.node as Node | undefined, stored, new Date(this.o.clock.now()));
        if (denied) throw denied;
      }
    }
    if (this.o.audit) state.pending.push({ access, name, revisionBefore });
  }

  private authorize(identity: Identity, access: RpcAccess, name: string): void {
    for (const verb of access.verbs) {
      const denied = this.o.access.authorize(identity, verb, access.resource, name, access.namespace);
      if (denied) throw denied;
    }
  }

  private auditRefusal(state: CallState, access: RpcAccess, message: Message, err: unknown): void {
    if (!this.o.audit) return;
    const code = codeName(toServiceError(err, "-").code);
    this.record(state, { access, name: access.name(message), revisionBefore: "" }, code, "");
  }

  /** Audit lines for changes the call did not answer (it failed, or was cancelled). */
  private flush(state: CallState, code: string): void {
    for (const p of state.pending.splice(0)) this.record(state, p, code === "OK" ? "UNKNOWN" : code, p.revisionBefore);
  }

  private record(state: CallState, p: Pending, code: string, after: string): void {
    this.o.audit?.record({
      identity: state.identity,
      method: shortMethod(state.path),
      verb: p.access.verbs.join("+"),
      resource: p.access.resource,
      name: p.name,
      namespace: p.access.namespace,
      code,
      revisionBefore: p.revisionBefore,
      revisionAfter: after,
      peer: state.peer,
    });
  }
}

/** The revision of the object a change answered with. */
function revisionAfter(access: RpcAccess, response: unknown): string {
  if (access.verbs.includes("delete")) return "deleted";
  const r = response as { node?: { metadata?: { resourceVersion?: string } }; lease?: { metadata?: { resourceVersion?: string } } } | null;
  if (access.resource === "leases") return r?.lease?.metadata?.resourceVersion ?? "";
  if (access.resource.startsWith("nodes")) return r?.node?.metadata?.resourceVersion ?? "";
  return "";
}
