/**
 * The replicas a NodeClient may talk to ("a:1,b:2", or an array), and failing over between them.
 *
 * Calls go to one replica at a time (like grpc's pick_first, without its one-name-per-target
 * limit: every address may be a host name). When a call ends with UNAVAILABLE (the replica was
 * killed, is shutting down, or cannot reach its store), later calls go to the next address in
 * the list, round and round. The failed call itself is sent again to the next replica only when
 * it provably never left this process (no connection could be made): a call that may have
 * reached a server is not repeated behind its caller's back — the caller decides (agents and
 * informers retry by themselves; a Watch resumes from the last revision it saw).
 *
 * With several addresses a client starts at a random one, so that a fleet of agents given the
 * same list spreads over the replicas.
 */
import * as grpc from "@grpc/grpc-js";
import { isServiceError } from "./errors.js";

/** "a:1,b:2" or ["a:1", "b:2"] as a list of host:port addresses (blanks and repeats dropped). */
export function parseEndpoints(address: string | readonly string[]): string[] {
  const list = (typeof address === "string" ? address.split(",") : address).map((a) => a.trim()).filter((a) => a !== "");
  if (list.length === 0) throw new Error(`no server address in ${JSON.stringify(address)}: want host:port, or several separated by commas`);
  return [...new Set(list)];
}

/** The call failed for want of the replica it went to (it may still have been applied). */
export function replicaFailed(err: unknown): boolean {
  return isServiceError(err) && err.code === grpc.status.UNAVAILABLE;
}

/**
 * The call never reached a server: grpc-js could make no connection (refused, no such host,
 * unreachable), so another replica may be asked the same thing without risk of doing it twice.
 */
export function neverSent(err: unknown): boolean {
  return (
    replicaFailed(err) &&
    /No connection established|ECONNREFUSED|Name resolution failed|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/.test((err as grpc.ServiceError).details)
  );
}

export class Endpoints {
  private readonly clients: (grpc.Client | undefined)[];
  private current: number;

  constructor(
    readonly list: readonly string[],
    private connect: (address: string) => grpc.Client,
    shuffle: boolean,
  ) {
    this.clients = list.map(() => undefined);
    this.current = shuffle ? Math.floor(Math.random() * list.length) : 0;
  }

  /** The address calls go to now. */
  get address(): string {
    return this.list[this.current]!;
  }

  /** The client of the replica calls go to now, and its position (for `failed`). */
  pick(): { client: grpc.Client; index: number } {
    const index = this.current;
    return { client: this.clientAt(index), index };
  }

  /** A call to the replica at `index` failed for want of it: later calls go to the next one. */
  failed(index: number): void {
    if (index === this.current) this.current = (index + 1) % this.list.length;
  }

  /** Resolves once a connection to some replica is up (calls go to it from then on). */
  waitForReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const tries = this.list.map(
      (_, i) =>
        new Promise<number>((resolve, reject) => this.clientAt(i).waitForReady(deadline, (err) => (err ? reject(err) : resolve(i)))),
    );
    return Promise.any(tries).then(
      (i) => {
        this.current = i;
      },
      (err: AggregateError) => {
        throw err.errors[0];
      },
    );
  }

  /**
   * Connect with `connect` from now on (new credentials): later calls go over new connections;
   * calls in flight finish on the old ones, which are closed.
   */
  reconnect(connect: (address: string) => grpc.Client): void {
    this.connect = connect;
    this.clients.forEach((c, i) => {
      c?.close();
      this.clients[i] = undefined;
    });
  }

  close(): void {
    for (const c of this.clients) c?.close();
  }

  private clientAt(index: number): grpc.Client {
    return (this.clients[index] ??= this.connect(this.list[index]!));
  }
}
