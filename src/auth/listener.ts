/**
 * The gRPC listener. Plaintext: grpc-js binds the port itself, as before. TLS: we terminate TLS
 * ourselves and hand each connection to grpc-js (Server#createConnectionInjector), because
 * grpc-js cannot "ask for a client certificate without requiring one": its createSsl either
 * requires one (checkClientCertificate = true) or never asks. kube-apiserver asks and does not
 * require (token clients connect on the same port), and refuses a certificate that does not
 * verify: here Node's TLS verifies it against the client CA, the connection is accepted either
 * way, and the authenticator answers UNAUTHENTICATED naming the reason for a bad one.
 *
 * For each TLS connection we keep what its client presented (keyed by the peer address grpc-js
 * reports for its calls); `getAuthContext()` carries only certificates that verified.
 */
import * as grpc from "@grpc/grpc-js";
import type { AddressInfo } from "node:net";
import { createServer, type PeerCertificate, type Server as TlsServer, type TLSSocket } from "node:tls";
import type { Credentials } from "./authenticator.js";
import { splitHostPort } from "./addresses.js";

/** PEM material for a TLS listener. */
export interface TlsMaterial {
  /** The serving certificate (and its chain). */
  cert: string;
  key: string;
  /** CAs client certificates are verified against; undefined = client certificates are not asked for. */
  clientCa?: string;
}

export interface GrpcListener {
  port: number;
  /** What a call's connection presented: its TLS client certificate, verified or not. */
  credentialsOf(call: { getPeer(): string; getAuthContext(): { sslPeerCertificate?: PeerCertificate } }): Pick<Credentials, "certificate" | "certificateError">;
  /** Stop accepting connections (open ones are the grpc server's to end). */
  close(): void;
}

interface PeerTls {
  certificate: PeerCertificate;
  error: string | undefined;
}

/** Options both TLS listeners (gRPC and HTTP) use. */
export function tlsServerOptions(tls: TlsMaterial): { cert: string; key: string; ca?: string; requestCert: boolean; rejectUnauthorized: false; minVersion: "TLSv1.2" } {
  return { cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: tls.clientCa !== undefined, rejectUnauthorized: false, minVersion: "TLSv1.2" };
}

export async function listenGrpc(server: grpc.Server, address: string, tls: TlsMaterial | undefined): Promise<GrpcListener> {
  if (!tls) {
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    return { port, credentialsOf: () => ({}), close: () => {} };
  }
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const peers = new Map<string, PeerTls>();
  const tlsServer: TlsServer = createServer({ ...tlsServerOptions(tls), ALPNProtocols: ["h2"] }, (socket: TLSSocket) => {
    const cert = socket.getPeerCertificate();
    if (cert && cert.raw) {
      const key = `${socket.remoteAddress}:${socket.remotePort}`;
      peers.set(key, { certificate: cert, error: socket.authorized ? undefined : String(socket.authorizationError) });
      socket.once("close", () => peers.delete(key));
    }
    socket.on("error", () => {}); // a reset connection is the client's business; grpc-js sees it close
    injector.injectConnection(socket);
  });
  tlsServer.on("tlsClientError", () => {}); // a failed handshake (wrong CA on the client's side, plaintext client): nothing to serve
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    tlsServer.once("error", reject);
    tlsServer.listen(port, host, () => {
      tlsServer.off("error", reject);
      resolve();
    });
  });
  return {
    port: (tlsServer.address() as AddressInfo).port,
    credentialsOf(call) {
      const verified = call.getAuthContext().sslPeerCertificate;
      if (verified) return { certificate: verified };
      const seen = peers.get(call.getPeer());
      return seen ? { certificate: seen.certificate, certificateError: seen.error ?? "UNABLE_TO_VERIFY_LEAF_SIGNATURE" } : {};
    },
    close() {
      tlsServer.close();
    },
  };
}
