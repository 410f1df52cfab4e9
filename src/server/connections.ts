/**
 * The gRPC listener, with a cap on concurrent connections (issue 11, defect 6: ~21,000 idle
 * TCP connections used to exhaust the process's file descriptors, and then every call and
 * /readyz failed, with nothing logged).
 *
 * grpc-js has no connection cap, and its bound sockets are internal. So the server does not
 * bind its port through grpc-js: this module listens with a net.Server of its own, whose
 * `maxConnections` makes Node close each connection past the cap as soon as it is accepted (the
 * client sees it closed; no descriptor is held), and hands every other connection to grpc-js
 * through its public connection injector (Server.createConnectionInjector), where the HTTP/2
 * session, credentials, per-connection stream cap (grpc.max_concurrent_streams), idle timeout
 * (grpc.max_connection_idle_ms) and keepalive apply as for a port grpc-js bound itself.
 *
 * A connection that sends nothing at all is closed after `firstBytesTimeoutMs`: grpc-js closes
 * idle sessions gracefully (GOAWAY), which a peer that never speaks HTTP/2 ignores, holding its
 * descriptor until keepalive gives up. Its first bytes are read here, put back, and the
 * connection handed over (Node's HTTP/2 session reads bytes already buffered on its socket).
 *
 * A warning is logged when the open connections reach 90% of the cap (again after they fell
 * below 80%), and, at most every 10 s, when connections were refused; `saturated` is true at
 * the cap (/readyz answers 503 then).
 */
import type { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { type PeerCredentials, type TlsMaterial, TlsTerminator } from "../auth/listener.js";
import fs from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";

export interface GrpcListenerOptions {
  server: GrpcServer;
  credentials: ServerCredentials;
  host: string;
  port: number;
  /** Concurrent connections accepted (--max-connections); more are closed at once. */
  maxConnections: number;
  /** A connection that sends nothing for this long after it opens is closed (the idle timeout, at most 10 s). */
  firstBytesTimeoutMs: number;
  /** Terminate TLS in front of grpc-js (src/auth/listener.ts); undefined = plaintext. */
  tls?: TlsMaterial;
  log: Logger;
}

const WARN_AT = 0.9;
const REARM_BELOW = 0.8;
const DROP_REPORT_MS = 10_000;

export class GrpcListener implements PeerCredentials {
  private open = 0;
  private warned = false;
  private refused = 0;
  private lastRefusalReport = 0;

  private constructor(
    private readonly net: Server,
    private readonly o: GrpcListenerOptions,
    readonly port: number,
    private readonly tls: TlsTerminator | undefined,
  ) {}

  /** Listen on host:port (port 0: any free port). Rejects with the listen error. */
  static async listen(o: GrpcListenerOptions): Promise<GrpcListener> {
    const injector = o.server.createConnectionInjector(o.credentials);
    const tls = o.tls && new TlsTerminator(o.tls, (socket) => injector.injectConnection(socket));
    const handOver = tls ? (socket: Socket) => tls.accept(socket) : (socket: Socket) => injector.injectConnection(socket);
    let listener: GrpcListener | undefined;
    const net = createServer((socket) => listener?.accept(socket, handOver));
    net.maxConnections = o.maxConnections;
    net.on("drop", () => listener?.onRefused());
    await new Promise<void>((resolve, reject) => {
      net.once("error", reject);
      net.listen(o.port, o.host, () => {
        net.off("error", reject);
        resolve();
      });
    });
    const address = net.address();
    listener = new GrpcListener(net, o, typeof address === "object" && address ? address.port : o.port, tls);
    return listener;
  }

  /** What a call's connection presented (its TLS client certificate, verified or not). */
  credentialsOf(call: Parameters<PeerCredentials["credentialsOf"]>[0]): ReturnType<PeerCredentials["credentialsOf"]> {
    return this.tls?.credentialsOf(call) ?? {};
  }

  /** Connections open now. */
  get connections(): number {
    return this.open;
  }

  /** At the cap: the next connection would be refused. */
  get saturated(): boolean {
    return this.open >= this.o.maxConnections;
  }

  /** Stop accepting connections (open ones are grpc-js's to close). Idempotent. */
  close(): void {
    if (this.net.listening) this.net.close();
  }

  private accept(socket: Socket, handOver: (socket: Socket) => void): void {
    this.open++;
    socket.once("close", () => {
      this.open--;
      if (this.warned && this.open < this.o.maxConnections * REARM_BELOW) this.warned = false;
    });
    if (!this.warned && this.open >= this.o.maxConnections * WARN_AT) {
      this.warned = true;
      this.o.log.warn(
        { connections: this.open, maxConnections: this.o.maxConnections },
        `gRPC connections near the limit: ${this.open} of ${this.o.maxConnections} (--max-connections); more are refused`,
      );
    }
    // Handed to grpc-js once the client has said something (the HTTP/2 preface, or a TLS hello).
    const silent = setTimeout(() => socket.destroy(), this.o.firstBytesTimeoutMs);
    socket.once("close", () => clearTimeout(silent));
    socket.once("data", (chunk: Buffer) => {
      clearTimeout(silent);
      socket.pause();
      socket.unshift(chunk);
      handOver(socket);
    });
    socket.on("error", () => {}); // a reset before the hand-over; grpc-js handles errors after it
  }

  private onRefused(): void {
    this.refused++;
    const now = Date.now();
    if (now - this.lastRefusalReport < DROP_REPORT_MS) return;
    this.lastRefusalReport = now;
    this.o.log.warn(
      { refused: this.refused, maxConnections: this.o.maxConnections },
      `gRPC connection refused: ${this.o.maxConnections} connections open, the limit (--max-connections); ${this.refused} refused so far`,
    );
  }
}

/** The soft limit on open files of this process (`ulimit -n`), if the system says. */
function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors kept for everything else: the store's files, the HTTP side's connections, logs. */
const RESERVED_FDS = 2000;

/**
 * The default --max-connections: what the open-file limit leaves after RESERVED_FDS (18,000
 * under `ulimit -n 20000`), at least 100; 10,000 where the limit is unknown.
 */
export function defaultMaxConnections(): number {
  const limit = openFileLimit();
  return limit === undefined ? 10_000 : Math.max(100, limit - RESERVED_FDS);
}

/** A warning when the connection caps together can exceed the open-file limit, else undefined. */
export function fdLimitWarning(maxConnections: number, httpMaxConnections: number): string | undefined {
  const limit = openFileLimit();
  if (limit === undefined || maxConnections + httpMaxConnections + 100 <= limit) return undefined;
  return (
    `--max-connections ${maxConnections} and --http-max-connections ${httpMaxConnections} may exhaust the open-file limit of ${limit} ` +
    "(ulimit -n) before either cap is reached: raise the limit or lower the caps"
  );
}
