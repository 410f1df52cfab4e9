/**
 * From connection settings (a kubeconfig and flags) to what NodeClient takes: TLS channel
 * credentials with the CA and client certificate, and the bearer token.
 */
import * as grpc from "@grpc/grpc-js";
import type { NodeClientOptions } from "../client/client.js";
import type { ConnectionSettings } from "./kubeconfig.js";

/** @throws Error for settings that cannot work together (a client certificate without TLS). */
export function clientOptions(s: ConnectionSettings): Pick<NodeClientOptions, "credentials" | "token"> {
  const tls = s.tls ?? (s.ca !== undefined || s.cert !== undefined);
  if (!tls && s.cert !== undefined) throw new Error("a client certificate needs TLS: use https://host:port or give the server's CA");
  const credentials = tls ? tlsCredentials(s) : grpc.credentials.createInsecure();
  return s.token ? { credentials, token: s.token } : { credentials };
}

/** TLS credentials: the CA to verify the server with (default: the system's roots) and the client certificate, if any. */
export function tlsCredentials(s: Pick<ConnectionSettings, "ca" | "cert" | "key">): grpc.ChannelCredentials {
  const buf = (v: string | undefined): Buffer | null => (v === undefined ? null : Buffer.from(v));
  return grpc.credentials.createSsl(buf(s.ca), buf(s.key), buf(s.cert));
}

/**
 * Node warns (DEP0123) whenever TLS is used with an IP address as the server name, which
 * grpc-js does for every IP target (the certificate is still checked against the IP). The CLIs
 * connect to IPs by design; keep their output clean.
 */
export function silenceIpServernameWarning(): void {
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === "DEP0123") return;
    (emit as (...args: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}
