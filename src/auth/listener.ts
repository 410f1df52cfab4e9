/**
 * TLS for the gRPC port. We terminate TLS ourselves and hand each connection to grpc-js
 * (Server#createConnectionInjector, through the connection-limiting listener of
 * src/server/connections.ts), because
 * grpc-js cannot "ask for a client certificate without requiring one": its createSsl either
 * requires one (checkClientCertificate = true) or never asks. kube-apiserver asks and does not
 * require (token clients connect on the same port), and refuses a certificate that does not
 * verify: here Node's TLS verifies it against the client CA, the connection is accepted either
 * way, and the authenticator answers UNAUTHENTICATED naming the reason for a bad one.
 *
 * For each TLS connection we keep what its client presented (keyed by the peer address grpc-js
 * reports for its calls); `getAuthContext()` carries only certificates that verified. The TLS
 * part (TlsTerminator) takes connections accepted by any listener, so a listener that limits
 * connections can put TLS in front of grpc-js the same way.
 */
import type { Socket } from "node:net";
import { createServer as createTlsServer, type PeerCertificate, type Server as TlsServer, type TLSSocket } from "node:tls";
import type { Credentials } from "./authenticator.js";

/** PEM material for a TLS listener. */
export interface TlsMaterial {
  /** The serving certificate (and its chain). */
  cert: string;
  key: string;
  /** CAs client certificates are verified against; undefined = client certificates are not asked for. */
  clientCa?: string;
}

/** Where the gate learns what a call's connection presented (src/server/connections.ts's GrpcListener). */
export interface PeerCredentials {
  /** What a call's connection presented: its TLS client certificate, verified or not. */
  credentialsOf(call: { getPeer(): string; getAuthContext(): { sslPeerCertificate?: PeerCertificate } }): Pick<Credentials, "certificate" | "certificateError">;
}

interface PeerTls {
  certificate: PeerCertificate;
  error: string | undefined;
}

/** Options both TLS listeners (gRPC and HTTP) use. */
export function tlsServerOptions(tls: TlsMaterial): { cert: string; key: string; ca?: string; requestCert: boolean; rejectUnauthorized: false; minVersion: "TLSv1.2" } {
  return { cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: tls.clientCa !== undefined, rejectUnauthorized: false, minVersion: "TLSv1.2" };
}

/**
 * TLS for connections accepted elsewhere: each TCP connection given to `accept` goes through a
 * TLS handshake (Node's tls.Server, never listening itself, fed the socket as its 'connection'),
 * and is then handed on with `inject` (grpc-js's connection injector). Whatever accepts
 * connections (a plain net.Server here; a connection-limiting listener just as well) stays in
 * charge of them.
 */
export class TlsTerminator {
  private readonly peers = new Map<string, PeerTls>();
  private readonly server: TlsServer;

  constructor(tls: TlsMaterial, inject: (socket: TLSSocket) => void) {
    this.server = createTlsServer({ ...tlsServerOptions(tls), ALPNProtocols: ["h2"] }, (socket: TLSSocket) => {
      const cert = socket.getPeerCertificate();
      if (cert && cert.raw) {
        const key = `${socket.remoteAddress}:${socket.remotePort}`;
        this.peers.set(key, { certificate: cert, error: socket.authorized ? undefined : String(socket.authorizationError) });
        socket.once("close", () => this.peers.delete(key));
      }
      socket.on("error", () => {}); // a reset connection is the client's business; grpc-js sees it close
      inject(socket);
    });
    // A failed handshake (a client that distrusts our CA, a plaintext client): nothing to serve.
    this.server.on("tlsClientError", () => {});
  }

  /** Take an accepted TCP connection. */
  accept(socket: Socket): void {
    this.server.emit("connection", socket);
  }

  /** What a call's connection presented (see PeerCredentials). */
  credentialsOf(call: { getPeer(): string; getAuthContext(): { sslPeerCertificate?: PeerCertificate } }): Pick<Credentials, "certificate" | "certificateError"> {
    const verified = call.getAuthContext().sslPeerCertificate;
    if (verified) return { certificate: verified };
    const seen = this.peers.get(call.getPeer());
    return seen ? { certificate: seen.certificate, certificateError: seen.error ?? "UNABLE_TO_VERIFY_LEAF_SIGNATURE" } : {};
  }
}
