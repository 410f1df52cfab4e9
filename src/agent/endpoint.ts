/**
 * The agent's endpoint: nodeplane.v1.AgentService on --address:--port (127.0.0.1:10250 by
 * default; the port is reported as status.daemon_endpoints.agent_endpoint.port, as the kubelet
 * reports its own), over TLS with the node's serving certificate.
 *
 * Only the control plane is answered. The TLS layer requires a client certificate signed by the
 * cluster CA (anything else fails the handshake); each call then needs that certificate to be
 * in the group nodeplane:control-plane (src/auth/control-plane.ts) — a node's or an operator's
 * certificate, though signed by the same CA, is answered PERMISSION_DENIED. Refusals are logged
 * (at most one line per 10 s, with a count of the others).
 *
 * TLS is terminated by a Node tls.Server whose connections are handed to grpc-js (as the server's
 * own listener does), so that a renewed serving certificate applies to new connections at once
 * (`useCertificate`) without rebinding the port.
 */
import * as grpc from "@grpc/grpc-js";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { AgentServiceService, type AgentServiceServer } from "../gen/nodeplane/v1/agent.js";
import type { AgentApi } from "./agent-api.js";
import { failureOf } from "./agent-api.js";
import type { AgentLogger } from "./agent.js";

export interface AgentEndpointOptions {
  /** Where to listen (--address, --port; port 0 = any free port). */
  host: string;
  port: number;
  /** The serving certificate and key, and the cluster CA callers' certificates must chain to (PEM). */
  tls: { cert: string; key: string; ca: string };
  /** The certificate group (O) a caller must be in: the control plane's, nodeplane:control-plane. */
  callerGroup: string;
  api: AgentApi;
  log: AgentLogger & { error(obj: object, msg: string): void };
}

/** Connections the endpoint holds at once (the control plane needs one per server replica). */
const MAX_CONNECTIONS = 64;
const REFUSAL_LOG_EVERY_MS = 10_000;

export class AgentEndpoint {
  private constructor(
    private readonly tlsServer: TlsServer,
    private readonly grpcServer: grpc.Server,
    private readonly ca: string,
    readonly port: number,
  ) {}

  /** @throws Error naming the address when it cannot listen. */
  static async listen(o: AgentEndpointOptions): Promise<AgentEndpoint> {
    const server = new grpc.Server({ "grpc.max_receive_message_length": 64 * 1024 });
    server.addService(AgentServiceService, handlers(o.api, o.callerGroup, o.log, refusalLog(o.log)));
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const tlsServer = createTlsServer(
      { ...o.tls, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ["h2"], minVersion: "TLSv1.2", handshakeTimeout: 10_000 },
      (socket) => {
        socket.on("error", () => {}); // a reset is the caller's business; grpc-js sees it close
        injector.injectConnection(socket);
      },
    );
    tlsServer.maxConnections = MAX_CONNECTIONS;
    const handshakes = refusalLog(o.log);
    tlsServer.on("tlsClientError", (err: Error & { code?: string }, socket) => handshakes({ peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: err.code ?? err.message }, "TLS handshake refused"));
    await new Promise<void>((resolve, reject) => {
      tlsServer.once("error", reject);
      tlsServer.listen(o.port, o.host, () => {
        tlsServer.off("error", reject);
        resolve();
      });
    }).catch((err: unknown) => {
      server.forceShutdown();
      throw new Error(`cannot listen on ${o.host}:${o.port} (--address, --port): ${err instanceof Error ? err.message : String(err)}`);
    });
    const address = tlsServer.address();
    return new AgentEndpoint(tlsServer, server, o.tls.ca, typeof address === "object" && address ? address.port : o.port);
  }

  /** Serve a renewed certificate to connections from now on. */
  useCertificate(pair: { cert: string; key: string }): void {
    this.tlsServer.setSecureContext({ ...pair, ca: this.ca });
  }

  close(): void {
    this.tlsServer.close();
    this.grpcServer.forceShutdown();
  }
}

type Refusals = (fields: object, msg: string) => void;

function handlers(api: AgentApi, group: string, log: AgentEndpointOptions["log"], refusals: Refusals): AgentServiceServer {
  const unary =
    <Req, Res>(method: string, fn: (req: Req) => Res): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      const refused = admit(call, method, group, refusals);
      if (refused) return callback(refused);
      try {
        callback(null, fn(call.request));
      } catch (err) {
        const f = failureOf(err);
        if (f.code === grpc.status.INTERNAL) log.error({ err, method }, "agent call failed");
        callback({ code: f.code, details: f.message });
      }
    };
  return {
    getResourceUsage: unary("GetResourceUsage", () => api.usage()),
    getLogs: unary("GetLogs", (req) => api.logs(req)),
    check: unary("Check", () => api.check()),
  };
}

/** Undefined for the control plane; the refusal otherwise (logged). */
function admit(call: grpc.ServerUnaryCall<unknown, unknown>, method: string, group: string, refusals: Refusals): Partial<grpc.StatusObject> | undefined {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  const orgs = list(cert?.subject?.O);
  if (orgs.includes(group)) return undefined;
  const who = cert ? `${JSON.stringify(list(cert.subject?.CN)[0] ?? "")} (groups ${orgs.join(", ") || "none"})` : "a caller without a verified certificate";
  refusals({ peer: call.getPeer(), method, subject: who }, "agent call refused: not the control plane");
  return { code: grpc.status.PERMISSION_DENIED, details: `${who} may not call the agent: it answers only the control plane (${group}); ask the nodeplane server (nodectl top/logs/check)` };
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Log a refusal, at most once per REFUSAL_LOG_EVERY_MS (saying how many were not logged). */
function refusalLog(log: AgentLogger): Refusals {
  let last = 0;
  let quiet = 0;
  return (fields, msg) => {
    const now = Date.now();
    if (now - last < REFUSAL_LOG_EVERY_MS) {
      quiet++;
      return;
    }
    log.warn({ ...fields, ...(quiet > 0 ? { notLogged: quiet } : {}) }, msg);
    last = now;
    quiet = 0;
  };
}
