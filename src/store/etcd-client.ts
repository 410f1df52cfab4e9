/**
 * The edge between EtcdStore and the `etcd3` client: how the connection is made, how a call
 * is bounded and retried, and how etcd's errors become ours (src/errors.ts).
 *
 * Connection. One `Etcd3` client over every endpoint (it keeps a gRPC channel per endpoint and
 * picks one at random per call). Every unary call has a deadline (`requestTimeoutMs`), so an
 * unreachable or stuck etcd fails a call with UNAVAILABLE instead of hanging it. Every call, and
 * the watch stream, carries etcd's `hasleader` metadata (clientv3's WithRequireLeader): a member
 * cut off from its cluster's leader refuses at once ("no leader") instead of waiting for a
 * quorum it cannot reach, and ends its watch streams so the client reconnects to another one.
 *
 * Retries. The library's own retry and circuit-breaker policies are turned off: its default
 * retries any "recoverable" error, a deadline included, and retrying a transaction whose
 * outcome is unknown could apply it twice. Instead `EtcdCalls` retries on another endpoint only
 * what is safe, as clientv3 does: a read after any unavailable-class error, a write only when
 * it never reached a member that could apply it (no connection, or "no leader").
 */
import fs from "node:fs";
import { InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import {
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCOutOfRangeError,
  type IOptions,
} from "etcd3";
import { InvalidError, NodeplaneError, UnavailableError } from "../errors.js";
import { messageOf } from "./watch-hub.js";

export interface EtcdConnectionOptions {
  /** Client URLs, e.g. ["http://127.0.0.1:2379"]; all http or all https. */
  endpoints: string[];
  /** PEM files for TLS: the CA that signed etcd's certificate, and our client certificate and key. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Deadline of every unary call, ms (default 5,000). */
  requestTimeoutMs?: number;
}

type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/** Handed to calls that nothing cancels (a new AbortController per call costs measurable CPU). */
const NEVER = new AbortController().signal;

/** A policy that runs the call once (the library's types want a cockatiel policy: this is the shape). */
const runOnce: Policy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => {} }),
  onFailure: () => ({ dispose: () => {} }),
  execute: async (fn, signal) => fn({ signal: signal ?? NEVER }),
};

/** Thrown instead of calling a member that failed a moment ago; etcd3 then tries another one. */
class MemberSkipped extends Error {}

/**
 * With several endpoints: after a member fails a call for want of a connection (refused,
 * dropped, "no leader"), skip it for a second, so that the next attempt goes to another one
 * (etcd3 moves to the next endpoint when a host policy refuses without calling). A deadline
 * does not count: a slow member is not a dead one. When every member failed a moment ago, none
 * is skipped: the call goes out (members that come back are used at once).
 */
function skipFailedMembers(members: number): (host: string) => Policy {
  const downUntil = new Map<string, { until: number }>();
  const allDown = (now: number): boolean => [...downUntil.values()].filter((d) => d.until > now).length >= members;
  return (host) => {
    const mine = downUntil.get(host) ?? { until: 0 };
    downUntil.set(host, mine);
    return {
      ...runOnce,
      execute: async (fn, signal) => {
        const now = Date.now();
        if (now < mine.until && !allDown(now)) throw new MemberSkipped("etcd member failed a moment ago; not tried");
        try {
          return await fn({ signal: signal ?? NEVER });
        } catch (err) {
          if (!(err instanceof GRPCDeadlineExceededError) && classify(err).kind === "unavailable") mine.until = Date.now() + 1000;
          throw err;
        }
      },
    };
  };
}

type Backoff = NonNullable<NonNullable<IOptions["faultHandling"]>["watchBackoff"]>;

/**
 * Reconnect a lost watch stream after 100 ms, doubling to at most 2 s (the library's default
 * grows to 30 s: the watch cache would lag etcd's return by that much).
 */
function watchBackoff(ms: number): Backoff {
  return { duration: ms, next: () => watchBackoff(Math.min(ms * 2, 2000)) };
}

/** etcd's WithRequireLeader: refuse at once on a member that has lost its leader. */
const requireLeader: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set("hasleader", "true");
      next(metadata, listener);
    },
  });

/** Check the endpoint list and TLS files; throws InvalidError naming the option. */
export function etcdClientOptions(opts: EtcdConnectionOptions): IOptions {
  if (opts.endpoints.length === 0) throw InvalidError.of("etcd-endpoints", "", "must list at least one etcd client URL");
  for (const url of opts.endpoints) {
    if (!/^https?:\/\/[^/\s]+:\d{1,5}\/?$/.test(url)) {
      throw InvalidError.of("etcd-endpoints", url, "must be a client URL like http://127.0.0.1:2379 or https://etcd-0:2379");
    }
  }
  const secure = opts.endpoints.filter((u) => u.startsWith("https:")).length;
  if (secure !== 0 && secure !== opts.endpoints.length) {
    throw InvalidError.of("etcd-endpoints", opts.endpoints.join(","), "must be all http:// or all https://");
  }
  const tls = opts.tls ?? {};
  if ((tls.caFile ?? tls.certFile ?? tls.keyFile) !== undefined && secure === 0) {
    throw InvalidError.of("etcd-endpoints", opts.endpoints.join(","), "must be https:// when TLS files are given");
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw InvalidError.of(tls.certFile === undefined ? "etcd-certfile" : "etcd-keyfile", "", "etcd-certfile and etcd-keyfile go together");
  }
  if (tls.certFile !== undefined && tls.caFile === undefined) {
    throw InvalidError.of("etcd-cafile", "", "is required with a client certificate (the CA that signed etcd's certificate)");
  }
  const timeout = opts.requestTimeoutMs ?? 5000;
  return {
    hosts: opts.endpoints.map((u) => u.replace(/\/$/, "")),
    credentials: tls.caFile === undefined
      ? undefined
      : { rootCertificate: readPem("etcd-cafile", tls.caFile), certChain: readPemIf("etcd-certfile", tls.certFile), privateKey: readPemIf("etcd-keyfile", tls.keyFile) },
    grpcOptions: {
      // A watch catching up sends up to 1,000 revisions in one message: no 4 MiB cap on what etcd answers.
      "grpc.max_receive_message_length": -1,
      // Notice a silently dead connection (etcd's --grpc-keepalive-min-time is 5 s).
      "grpc.keepalive_time_ms": 15_000,
      "grpc.keepalive_timeout_ms": 5_000,
    },
    defaultCallOptions: (ctx) => (ctx.isStream ? { interceptors: [requireLeader] } : { interceptors: [requireLeader], deadline: Date.now() + timeout }),
    faultHandling: { global: runOnce, host: opts.endpoints.length > 1 ? skipFailedMembers(opts.endpoints.length) : () => runOnce, watchBackoff: watchBackoff(100) },
  };
}

function readPem(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw InvalidError.of(flag, file, `cannot be read: ${messageOf(err)}`);
  }
}

function readPemIf(flag: string, file: string | undefined): Buffer | undefined {
  return file === undefined ? undefined : readPem(flag, file);
}

/** What an etcd error means for the store. */
type EtcdFailure =
  | { kind: "compacted" }
  | { kind: "future" }
  /** etcd refused the request as malformed or too large (nothing applied). */
  | { kind: "refused"; reason: string }
  /** etcd could not be asked or did not answer; `unsent` when no member can have applied it. */
  | { kind: "unavailable"; unsent: boolean };

function classify(err: unknown): EtcdFailure {
  const msg = messageOf(err);
  if (err instanceof GRPCOutOfRangeError && msg.includes("required revision has been compacted")) return { kind: "compacted" };
  if (err instanceof GRPCOutOfRangeError && msg.includes("required revision is a future revision")) return { kind: "future" };
  if (err instanceof GRPCInvalidArgumentError || /request is too large|too many operations in txn|duplicate key given/.test(msg)) {
    return { kind: "refused", reason: msg.replace(/^.*?etcdserver: /, "") };
  }
  const unsent =
    err instanceof MemberSkipped ||
    (!(err instanceof GRPCDeadlineExceededError) && /No connection established|ECONNREFUSED|etcdserver: no leader|client was already closed/.test(msg));
  return { kind: "unavailable", unsent };
}

/**
 * Runs calls against etcd: bounded (the deadline), retried where safe on another endpoint,
 * tracked (close waits for calls in flight), and failing with UnavailableError otherwise.
 *
 * At most `maxInFlight` calls are out at once; the others wait their turn here. A deadline
 * runs from the moment a call is handed to gRPC, so thousands of concurrent callers must not
 * queue inside the client (gRPC's own queue is on the deadline's clock: under load, calls
 * expired there before reaching etcd). etcd's throughput stops growing long before 256.
 */
export class EtcdCalls {
  readonly client: Etcd3;
  private readonly attempts: number;
  private readonly inFlight = new Set<Promise<unknown>>();
  private active = 0;
  private readonly turns: (() => void)[] = [];

  constructor(
    options: IOptions,
    private readonly describe: string,
    private readonly maxInFlight = 256,
  ) {
    this.client = new Etcd3(options);
    // Enough tries to reach every endpoint once (hosts are picked at random per call).
    this.attempts = Array.isArray(options.hosts) ? Math.max(1, options.hosts.length) : 1;
  }

  /** A read (or a call as safe to repeat): retried on another endpoint after any unavailable-class error. */
  idempotent<T>(what: string, call: (client: Etcd3) => Promise<T>): Promise<T> {
    return this.track(this.run(what, call, () => true));
  }

  /** A write: retried only when no member can have applied it. */
  write<T>(what: string, call: (client: Etcd3) => Promise<T>): Promise<T> {
    return this.track(this.run(what, call, (f) => f.unsent));
  }

  /** Wait for every call in flight to settle. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  close(): void {
    this.client.close();
  }

  private async run<T>(what: string, call: (client: Etcd3) => Promise<T>, retry: (f: { unsent: boolean }) => boolean): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      // A slot is taken here, or handed over by the call that frees it.
      if (this.active < this.maxInFlight) this.active++;
      else await new Promise<void>((resolve) => this.turns.push(resolve));
      try {
        return await call(this.client);
      } catch (err) {
        if (err instanceof NodeplaneError) throw err;
        const failure = classify(err);
        if (failure.kind !== "unavailable") throw new EtcdCallError(failure, err);
        if (attempt < this.attempts && retry(failure)) continue;
        throw this.unavailable(what, failure.unsent, err);
      } finally {
        const next = this.turns.shift();
        if (next) next();
        else this.active--;
      }
    }
  }

  /** The error for a call that failed for want of etcd; a write's message says whether it may have applied. */
  unavailable(what: string, unsent: boolean, cause: unknown): UnavailableError {
    const outcome = what.startsWith("txn") && !unsent ? "; whether it was applied is unknown" : "";
    return new UnavailableError(`storage unavailable: etcd did not answer the ${what}${outcome}; retry`, {
      cause: new Error(`etcd ${this.describe}: ${messageOf(cause)}`, { cause }),
    });
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const done = (): void => void this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }
}

/** An etcd answer that is not about availability (compacted, future, refused): the store maps it. */
export class EtcdCallError extends Error {
  constructor(
    readonly failure: Exclude<EtcdFailure, { kind: "unavailable" }>,
    cause: unknown,
  ) {
    super(messageOf(cause), { cause });
  }
}
