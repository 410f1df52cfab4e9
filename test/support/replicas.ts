/**
 * Replicas of `nodeplane serve` as real processes on one etcd prefix, and the load the failover
 * tests put on them: a watcher that resumes from its last revision wherever it can, and a writer
 * that records every write the server acknowledged.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { NodeClient, type WatchEvent } from "../../src/client/client.js";
import { sleep, systemClock } from "../../src/clock.js";
import { OutOfRangeError, RpcError, UnavailableError } from "../../src/client/errors.js";
import type { EtcdCluster } from "./etcd.js";
import { spawnServer, type Spawned } from "./process.js";
import { agentNode } from "./server.js";
import { Tally } from "./tally.js";

export interface Replica {
  server: Spawned;
  /** 127.0.0.1:PORT of its gRPC side. */
  address: string;
  /** Its name in the leader Lease (the default: host name and pid). */
  identity: string;
}

/** `n` replicas on `etcd` under a fresh prefix, with `args` added to each command line. */
export async function startReplicas(etcd: EtcdCluster, n: number, args: string[]): Promise<Replica[]> {
  const prefix = `/np-replicas-${randomBytes(6).toString("hex")}`;
  const out: Replica[] = [];
  for (let i = 0; i < n; i++) {
    const server = await spawnServer([
      ...["--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), "--etcd-prefix", prefix],
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--log-level", "info"],
      ...args,
    ]);
    out.push({ server, address: `127.0.0.1:${server.grpcPort}`, identity: `${os.hostname()}_${server.child.pid}` });
  }
  return out;
}

/** Resolves with the first of `replicas` to log that it became the leader (from now on, or already if `seen`). */
export function nextLeader(replicas: Replica[], seen: boolean): Promise<Replica> {
  return Promise.race(replicas.map((r) => r.server.logLine("became the leader", seen).then(() => r)));
}

const running = (r: Replica): boolean => r.server.child.exitCode === null && r.server.child.signalCode === null;

/** The running replicas whose /metrics say they run the controllers now. */
export async function leading(replicas: Replica[]): Promise<Replica[]> {
  const says = await Promise.all(
    replicas.filter(running).map(async (r) => {
      const text = await (await fetch(`http://127.0.0.1:${r.server.httpPort}/metrics`)).text();
      return /^nodeplane_leader\{identity="[^"]*"\} 1$/m.test(text) ? [r] : [];
    }),
  );
  return says.flat();
}

/**
 * The one replica that runs the controllers now, by their /metrics; while none does (an
 * election in progress), waits for the next to log that it became the leader. Rejects if two do.
 */
export async function currentLeader(replicas: Replica[]): Promise<Replica> {
  for (;;) {
    // Listening before asking: a replica becoming leader after the answer is not missed.
    const next = nextLeader(replicas, false);
    const now = await leading(replicas);
    if (now.length > 1) throw new Error(`${now.map((r) => r.identity).join(" and ")} all run the controllers`);
    if (now.length === 1) return now[0]!;
    await next;
  }
}

/** Resolves once no running replica runs the controllers (each that did logged that it stopped). */
export async function noLeader(replicas: Replica[]): Promise<void> {
  for (;;) {
    const stopped = new Map(replicas.map((r) => [r, r.server.logLine("stopped leading", false)]));
    const now = await leading(replicas);
    if (now.length === 0) return;
    await Promise.all(now.map((r) => stopped.get(r)));
  }
}

/** Kill every replica still running (afterAll). */
export function killAll(replicas: Replica[]): void {
  for (const r of replicas) if (running(r)) r.server.child.kill("SIGKILL");
}

/**
 * A Watch of every node from a revision on that, whenever its stream fails with UNAVAILABLE,
 * watches again from the last revision it received (the client moves to another replica).
 * Any other failure ends it (`error`).
 */
export class ResumingWatch {
  readonly events: WatchEvent[] = [];
  /** The replicas it received events from, in order. */
  readonly endpoints: string[] = [];
  resumes = 0;
  error: unknown;
  readonly newest = new Tally();
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(
    private readonly client: NodeClient,
    fromRevision: number,
    private readonly onEvent: (ev: WatchEvent) => void = () => {},
  ) {
    this.newest.set(fromRevision);
    this.done = this.run();
  }

  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        for await (const ev of this.client.watch({ resourceVersion: String(this.newest.value), allowBookmarks: true }, { signal: this.abort.signal })) {
          if (this.endpoints.at(-1) !== this.client.endpoint) this.endpoints.push(this.client.endpoint);
          if (ev.type !== "BOOKMARK") {
            this.events.push(ev);
            this.onEvent(ev);
          }
          this.newest.set(Number(ev.resourceVersion));
        }
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (!(err instanceof UnavailableError)) {
          this.error = err;
          // Whoever waits for a revision learns why it will never come.
          this.newest.fail(new Error(`the watch ended with ${String(err)}`, { cause: err }));
          return;
        }
        this.resumes++;
        // Every replica may be failing (etcd down): back off a little, as a client does (not a wait for an event).
        await sleep(systemClock, 100, this.abort.signal);
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

/** A client that counts the renewals its heartbeat streams got answered. */
export class CountingClient extends NodeClient {
  readonly renewals = new Tally();

  override heartbeat(opts?: Parameters<NodeClient["heartbeat"]>[0]): ReturnType<NodeClient["heartbeat"]> {
    const stream = super.heartbeat(opts);
    return {
      renew: async (...args) => {
        const res = await stream.renew(...args);
        this.renewals.add();
        return res;
      },
      close: () => stream.close(),
    };
  }
}

export interface AckedWrite {
  kind: "register" | "status" | "labels";
  node: string;
  /** The value written (the node's `seq` label, or its cpu capacity). */
  seq: number;
  revision: number;
}

/**
 * Writers in `loops` concurrent loops through `client`: Register of a new node, UpdateStatus
 * (capacity cpu = seq) and UpdateNode (label seq) of it, round and round. `acked` holds every
 * write the server answered OK; `failed` counts the others (their outcome unknown).
 */
export class Writer {
  readonly acked: AckedWrite[] = [];
  readonly count = new Tally();
  failed = 0;
  readonly errors = new Map<string, number>();
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: NodeClient,
    loops: number,
    private readonly prefix = "w",
  ) {
    this.done = Promise.all(Array.from({ length: loops }, (_, i) => this.loop(i))).then(() => undefined);
    // Its failure is stop()'s to report; meanwhile count.reach() rejects with it.
    this.done.catch(() => {});
  }

  private async loop(id: number): Promise<void> {
    for (let seq = 1; !this.stopped; seq++) {
      const node = `${this.prefix}${id}-${Math.floor((seq - 1) / 3)}`;
      const kind = (["register", "status", "labels"] as const)[(seq - 1) % 3]!;
      try {
        let rv: string | undefined;
        if (kind === "register") rv = (await this.client.register(agentNode(node, { metadata: { name: node, labels: { seq: String(seq) } } }))).node?.metadata?.resourceVersion;
        else if (kind === "status") rv = (await this.client.updateStatus(node, { capacity: { cpu: String(seq), memory: "16Gi", pods: "110" } })).metadata?.resourceVersion;
        else rv = (await this.client.updateNode({ metadata: { name: node, labels: { "kubernetes.io/hostname": node, "kubernetes.io/os": "linux", seq: String(seq) } } })).metadata?.resourceVersion;
        this.acked.push({ kind, node, seq, revision: Number(rv) });
        this.count.add();
      } catch (err) {
        this.failed++;
        const key = err instanceof RpcError ? err.constructor.name : String(err);
        this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
        if (err instanceof OutOfRangeError) {
          this.count.fail(err);
          throw err;
        }
        // A failed register leaves the node to create: do it again rather than update a node that may not exist.
        if (kind === "register") seq--;
        await sleep(systemClock, 50); // a client's back-off before the next write
      }
    }
  }

  /** Stop after the writes in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}
