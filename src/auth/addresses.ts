/**
 * Listen addresses: parsing "host:port" / "[v6]:port", and whether a host is loopback-only
 * (the one place plaintext without authentication is allowed).
 */
import { isIP } from "node:net";

/** "host:port" or "[v6]:port"; an empty host means 127.0.0.1. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`bad address ${JSON.stringify(address)}: want host:port, e.g. 127.0.0.1:50051`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** True only for addresses no other machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1" || host.toLowerCase() === "::ffff:127.0.0.1";
  return false;
}
