/**
 * The server under fuzz: the real `nodeplane serve` in its own process (so that a request that
 * kills it shows as a dead process, not as a failed test runner), a raw gRPC client with
 * identity serializers, and the probes the suite asserts with — alive and answering, and the
 * store's revision.
 *
 * Who the suite calls as is a FuzzIdentity: anonymous over plaintext (authentication off), or
 * one of identities.ts's with authentication on; an identity carries the credentials and server
 * flags, and every fuzz test runs unchanged under it.
 */
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListNodesRequest, ListNodesResponse } from "../../src/gen/nodeplane/v1/service.js";
import { spawnServer, type Spawned } from "../support/process.js";
import { FUZZ_RPCS, type FuzzRpc, SEED_NODES } from "./rpcs.js";

export interface FuzzIdentity {
  /** Shown in test names. */
  name: string;
  /** Extra `nodeplane serve` flags this identity needs (certificates, a CA, an authz policy). */
  serverArgs: string[];
  /** A gRPC client to `address` with this identity's channel credentials. */
  openGrpc(address: string): grpc.Client;
  /** Per-call metadata (e.g. a bearer token). */
  metadata(): grpc.Metadata;
  /** An HTTP/2 session to the gRPC port, for the wire-level fuzz. */
  openHttp2(port: number): http2.ClientHttp2Session;
  /** Headers every wire-level request carries besides the gRPC ones. */
  headers(): http2.OutgoingHttpHeaders;
  /** Readies a fresh data dir before the server starts on it (e.g. puts the cluster's PKI there). */
  prepare?(dataDir: string): void;
  /**
   * Who seeds the store and probes it (default: this identity): with authentication on, one
   * that may register every seed node and list them, whatever the fuzzed identity may do.
   */
  control?: Pick<FuzzIdentity, "openGrpc" | "metadata">;
}

/** Channel options of every fuzz client, whatever its credentials. */
export const FUZZ_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Every status the suite sees is the server's: no client-side size limit, no retries.
  "grpc.max_receive_message_length": -1,
  "grpc.enable_retries": 0,
  // A connection of its own (grpc-js shares them between clients by default): the fuzz
  // connection may be broken by what it sends, the control connection must not be.
  "grpc.use_local_subchannel_pool": 1,
};

export const ANONYMOUS: FuzzIdentity = {
  name: "anonymous",
  serverArgs: [],
  openGrpc: (address) => new grpc.Client(address, grpc.credentials.createInsecure(), FUZZ_CHANNEL_OPTIONS),
  metadata: () => new grpc.Metadata(),
  openHttp2: (port) => http2.connect(`http://127.0.0.1:${port}`),
  headers: () => ({}),
};

/** How a call ended. `code` is the server's status, or OK for a stream answered at its first message. */
export interface Outcome {
  code: grpc.status;
  details: string;
  responses: Buffer[];
}

export type Health = { up: true; revision: bigint } | { up: false; why: string };

/** What a call needs to know of its RPC. */
type Callable = Pick<FuzzRpc, "path" | "kind" | "answeredAtFirstMessage">;

/** A call with no status after this long is a hang (generous: the machine is shared and often loaded). */
export const CALL_TIMEOUT_MS = 30_000;

const identity = (b: Buffer): Buffer => b;

export class FuzzTarget {
  /** Carries the fuzz bodies. */
  private client: grpc.Client;
  /** Carries only the suite's own good requests: seeding, probes. */
  private control: grpc.Client;

  private constructor(
    readonly who: FuzzIdentity,
    private server: Spawned,
    private dataDir: string,
  ) {
    this.client = who.openGrpc(this.address);
    this.control = (who.control ?? who).openGrpc(this.address);
  }

  static async start(who: FuzzIdentity = ANONYMOUS): Promise<FuzzTarget> {
    const { server, dataDir } = await FuzzTarget.spawn(who);
    return new FuzzTarget(who, server, dataDir);
  }

  private get address(): string {
    return `127.0.0.1:${this.server.grpcPort}`;
  }

  private static async spawn(who: FuzzIdentity): Promise<{ server: Spawned; dataDir: string }> {
    const dataDir = mkdtempSync(join(tmpdir(), "nodeplane-fuzz-"));
    who.prepare?.(dataDir);
    const server = await spawnServer([
      "--listen", "127.0.0.1:0",
      "--http-listen", "",
      "--data-dir", dataDir,
      // Errors only: an INTERNAL answer's cause, or a crash, is what a failure message shows.
      "--log-level", "error",
      // No controller at all (the list names none to run): no write in the background, every
      // revision is a fuzz request's doing.
      "--controllers=-nodelifecycle",
      // Every renewal a durable write answered with its revision: a Lease checkpoint commits
      // renewals a second later, in whatever batch is running then, at revisions no answer
      // names, and the suite's accounting is exact. (The checkpoint path has tests of its own:
      // test/registry/lease-renewals.test.ts, test/server/lease-visibility.test.ts and the
      // kill -9 bound in test/server/lease-checkpoint-crash.test.ts.)
      "--lease-checkpoint-interval", "0s",
      ...who.serverArgs,
    ]);
    return { server, dataDir };
  }

  get port(): number {
    return this.server.grpcPort;
  }

  /** Undefined while the process runs; else how it ended, with the end of its stderr. */
  death(): string | undefined {
    const { exitCode, signalCode } = this.server.child;
    if (exitCode === null && signalCode === null) return undefined;
    return `the server process exited (${signalCode ?? `code ${exitCode}`}); its stderr ends:\n${tail(this.server.stderr(), 2500)}`;
  }

  /** The end of the server's stderr (the cause of an INTERNAL answer is logged there). */
  stderrTail(chars: number): string {
    return tail(this.server.stderr(), chars);
  }

  /** A test starts against a live server: one an earlier test took down is replaced. */
  async ensureUp(): Promise<void> {
    if (!(await this.health()).up) await this.restart();
  }

  /** A fresh server on a fresh data dir (the old one is killed if it still runs). */
  async restart(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
    const { server, dataDir } = await FuzzTarget.spawn(this.who);
    this.server = server;
    this.dataDir = dataDir;
    this.reconnect();
  }

  /** New connections (after calls that hung: what they sent may have broken the connection). */
  reconnect(): void {
    this.client.close();
    this.control.close();
    this.client = this.who.openGrpc(this.address);
    this.control = (this.who.control ?? this.who).openGrpc(this.address);
  }

  /** Send one raw fuzz body; resolves with the status (never rejects). */
  call(rpc: Callable, body: Uint8Array, timeoutMs = CALL_TIMEOUT_MS): Promise<Outcome> {
    return callOn(this.client, this.who.metadata(), rpc, body, timeoutMs);
  }

  private callControl(rpc: Callable, body: Uint8Array): Promise<Outcome> {
    return callOn(this.control, (this.who.control ?? this.who).metadata(), rpc, body, CALL_TIMEOUT_MS);
  }

  /**
   * Whether the process runs and answers, on the control connection, a health Check (SERVING)
   * and a read; with the store's current revision when it does.
   */
  async health(): Promise<Health> {
    const dead = this.death();
    if (dead) return { up: false, why: dead };
    const health = await this.callControl(HEALTH_CHECK, new Uint8Array(0));
    // HealthCheckResponse { status = 1 (SERVING) }: bytes 08 01.
    if (health.code !== grpc.status.OK || !health.responses[0]?.equals(Buffer.of(0x08, 0x01))) {
      return { up: false, why: this.death() ?? `health Check answered ${grpc.status[health.code]} ${health.details}` };
    }
    // The revision from ListNodes' resource_version: a tiny list (no node matches).
    const list = await this.callControl(LIST_NODES, REVISION_PROBE);
    if (list.code !== grpc.status.OK) return { up: false, why: this.death() ?? `ListNodes answered ${grpc.status[list.code]} ${list.details}` };
    return { up: true, revision: BigInt(ListNodesResponse.decode(list.responses[0]!).resourceVersion) };
  }

  /** The store's current revision (throws when the server does not answer). */
  async revision(): Promise<bigint> {
    const h = await this.health();
    if (!h.up) throw new Error(`the server does not answer: ${h.why}`);
    return h.revision;
  }

  /** (Re-)register the seed nodes, so that bases reach existing objects after deletes and mutations. */
  async seed(): Promise<void> {
    const outs = await Promise.all(SEED_NODES.map((_, i) => this.callControl(REGISTER, REGISTER.bases[i]!)));
    outs.forEach((out, i) => {
      if (out.code !== grpc.status.OK) throw new Error(`registering seed node ${SEED_NODES[i]} failed: ${grpc.status[out.code]} ${out.details}`);
    });
  }

  async stop(): Promise<void> {
    this.client.close();
    this.control.close();
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async kill(): Promise<void> {
    if (this.death() === undefined) this.server.child.kill("SIGKILL");
    await this.server.exited;
  }
}

const byName = (name: string): FuzzRpc => {
  const rpc = FUZZ_RPCS.find((r) => r.name === name);
  if (!rpc) throw new Error(`no ${name} in the RPC table`);
  return rpc;
};
const LIST_NODES = byName("ListNodes");
const REVISION_PROBE = ListNodesRequest.encode({ labelSelector: "", fieldSelector: "metadata.name=fuzz-revision-probe", limit: 1, continueToken: "" }).finish();
const HEALTH_CHECK = byName("health.Check");
/** Its first bases register the seed nodes, in SEED_NODES order. */
const REGISTER = byName("Register");

/** One raw call with identity serializers; resolves with how it ended (never rejects). */
function callOn(client: grpc.Client, md: grpc.Metadata, rpc: Callable, body: Uint8Array, timeoutMs: number): Promise<Outcome> {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const options = { deadline: Date.now() + timeoutMs };
  return new Promise<Outcome>((resolve) => {
    const responses: Buffer[] = [];
    let settled = false;
    const settle = (code: grpc.status, details: string): void => {
      if (settled) return;
      settled = true;
      resolve({ code, details, responses });
    };
    if (rpc.kind === "unary") {
      client.makeUnaryRequest(rpc.path, identity, identity, buf, md, options, (err, value) => {
        if (value) responses.push(value);
        settle(err ? (err.code ?? grpc.status.UNKNOWN) : grpc.status.OK, err ? err.details : "");
      });
      return;
    }
    let stream: grpc.ClientReadableStream<Buffer>;
    if (rpc.kind === "server-stream") stream = client.makeServerStreamRequest(rpc.path, identity, identity, buf, md, options);
    else {
      const duplex = client.makeBidiStreamRequest(rpc.path, identity, identity, md, options);
      duplex.write(buf);
      duplex.end();
      stream = duplex;
    }
    stream.on("data", (chunk: Buffer) => {
      responses.push(chunk);
      if (rpc.answeredAtFirstMessage) {
        settle(grpc.status.OK, "answered (stream open; ended by the client)");
        stream.cancel();
      }
    });
    stream.on("status", (s: grpc.StatusObject) => settle(s.code, s.details));
    // The same end arrives as "status"; without a listener an error event would throw.
    stream.on("error", () => {});
  });
}

/** The last lines of `text` within `chars`, each cut to 300 characters (a crash's message can be huge). */
function tail(text: string, chars: number): string {
  const lines = text.split("\n").map((l) => (l.length > 300 ? `${l.slice(0, 300)}…(${l.length} chars)` : l));
  const out: string[] = [];
  for (let size = 0, i = lines.length - 1; i >= 0 && size + lines[i]!.length <= chars; size += lines[i]!.length + 1, i--) out.unshift(lines[i]!);
  return out.join("\n");
}
