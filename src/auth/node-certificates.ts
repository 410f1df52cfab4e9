/**
 * The agent's client certificate (kubelet TLS bootstrapping and certificate rotation):
 *
 * - `obtain()`: use the key and certificate in --cert-dir while they are valid; otherwise, with a
 *   bootstrap token, make a new key, send a CSR for CN=system:node:<name>, O=system:nodes over
 *   TLS (the server verified against the CA we were given), and keep what the cluster CA signed.
 *   Refusals that retrying cannot fix (a taken name, a bad token) end it with their message;
 *   anything else is retried with backoff.
 * - `rotate()`: from then on, renew at a random point between 70 % and 90 % of the certificate's
 *   life (as client-go's certificate manager), authenticating with the current certificate, and
 *   hand the new credentials to the client.
 *
 * Files in --cert-dir (mode 0600, written atomically, key before certificate): node.key,
 * node.crt, ca.crt (the CA that signed node.crt, as the server sent it).
 *
 * The same, with `usage: "serving"`, keeps the serving certificate of the agent's endpoint
 * (serving.key, serving.crt; kubelet's kubelet-server-current.pem): asked for and renewed with
 * the node's client certificate (`askWith`), never with the bootstrap token.
 */
import * as grpc from "@grpc/grpc-js";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Backoff } from "../backoff.js";
import { sleep as sleepOn, systemClock } from "../clock.js";
import { AuthClient } from "../client/auth-client.js";
import { RpcError } from "../client/errors.js";
import { tlsCredentials } from "./client-credentials.js";
import { GROUPS, NODE_USER_PREFIX } from "./identity.js";
import { writePrivateFile } from "./kubeconfig.js";
import { createCsr, generateKeyPair, privateKeyPem } from "./pki.js";

export interface NodeCertificatesOptions {
  /** host:port of the server. */
  server: string;
  /** PEM CA to verify the server with. */
  ca: string;
  certDir: string;
  nodeName: string;
  /** For the first certificate, when --cert-dir has none that is valid. */
  bootstrapToken?: string;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Where in a certificate's life to renew: [from, to] (default [0.7, 0.9]). */
  renewWindow?: [number, number];
  /** "client" (default): the node's client certificate; "serving": its agent endpoint's serving certificate. */
  usage?: "client" | "serving";
  /** For a serving certificate: the client certificate to ask with (the node's current one). */
  askWith?: () => Pair;
}

const FILES = { client: { cert: "node.crt", key: "node.key", what: "node" }, serving: { cert: "serving.crt", key: "serving.key", what: "serving" } } as const;
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

export interface Pair {
  cert: string;
  key: string;
}

/** Refusals a retry would not change. */
const PERMANENT = new Set([grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED, grpc.status.INVALID_ARGUMENT]);

export class NodeCertificates {
  private pair: Pair;

  private constructor(
    private readonly o: NodeCertificatesOptions,
    pair: Pair,
  ) {
    this.pair = pair;
  }

  /** A valid certificate from --cert-dir, or a new one through the bootstrap token (or, for a serving certificate, the client certificate). */
  static async obtain(o: NodeCertificatesOptions, signal: AbortSignal): Promise<NodeCertificates> {
    const usage = o.usage ?? "client";
    const names = FILES[usage];
    const files = { cert: join(o.certDir, names.cert), key: join(o.certDir, names.key) };
    if (existsSync(files.cert) && existsSync(files.key)) {
      const pair = { cert: readFileSync(files.cert, "utf8"), key: readFileSync(files.key, "utf8") };
      const cert = new X509Certificate(pair.cert);
      const expected = `CN=${NODE_USER_PREFIX}${o.nodeName}`;
      const fit = usage === "client" || (cert.keyUsage ?? []).includes(SERVER_AUTH);
      if (Date.parse(cert.validTo) > Date.now() && cert.subject.split("\n").includes(expected) && fit) {
        o.log.info({ node: o.nodeName, notAfter: new Date(cert.validTo).toISOString(), certDir: o.certDir }, `using the ${names.what} certificate in the cert dir`);
        return new NodeCertificates(o, pair);
      }
      o.log.warn({ node: o.nodeName, certDir: o.certDir, subject: cert.subject.replace(/\n/g, ", "), notAfter: cert.validTo }, `the ${names.what} certificate in the cert dir is expired or for another node`);
    }
    if (usage === "serving") {
      const certs = new NodeCertificates(o, { cert: "", key: "" });
      await certs.renew(o.askWith!(), signal);
      return certs;
    }
    if (!o.bootstrapToken) {
      throw new Error(`no valid node certificate in ${o.certDir} and no bootstrap token to get one (--bootstrap-token, or a token in --bootstrap-kubeconfig)`);
    }
    o.log.info({ node: o.nodeName, server: o.server }, "bootstrapping: asking for a node certificate with the bootstrap token");
    const certs = new NodeCertificates(o, { cert: "", key: "" });
    await certs.renew({ token: o.bootstrapToken }, signal);
    return certs;
  }

  /** TLS credentials with the current certificate. */
  credentials(): grpc.ChannelCredentials {
    return tlsCredentials({ ca: this.o.ca, ...this.pair });
  }

  get notAfter(): Date {
    return new Date(new X509Certificate(this.pair.cert).validTo);
  }

  /** The certificate and key now (PEM). */
  current(): Pair {
    return this.pair;
  }

  /** The cluster CA that signed it (ca.crt in the cert dir, as the server sent it). */
  clusterCa(): string {
    return readFileSync(join(this.o.certDir, "ca.crt"), "utf8");
  }

  /** Renew before expiry until `signal` aborts, telling `use` about each new certificate. */
  async rotate(signal: AbortSignal, use: (credentials: grpc.ChannelCredentials) => void): Promise<void> {
    while (!signal.aborted) {
      const cert = new X509Certificate(this.pair.cert);
      await sleepUntil(renewalTime(Date.parse(cert.validFrom), Date.parse(cert.validTo), this.o.renewWindow), signal);
      if (signal.aborted) return;
      try {
        await this.renew(this.o.usage === "serving" ? this.o.askWith!() : this.pair, signal);
      } catch (err) {
        // Refused (e.g. the node was given another name): keep the current certificate and try again later.
        this.o.log.warn({ node: this.o.nodeName, err: err instanceof Error ? err.message : String(err) }, "certificate rotation refused; trying again in a minute");
        await sleep(60_000, signal);
        continue;
      }
      if (signal.aborted) return;
      use(this.credentials());
    }
  }

  /** Get a certificate signed, authenticated with `auth` (the bootstrap token or the current certificate); retried until it works or `signal` aborts. */
  private async renew(auth: { token: string } | Pair, signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
    while (!signal.aborted) {
      const keys = await generateKeyPair();
      const csr = await createCsr(keys, { commonName: NODE_USER_PREFIX + this.o.nodeName, organizations: [GROUPS.nodes] });
      const usage = this.o.usage ?? "client";
      const names = FILES[usage];
      const client =
        "token" in auth
          ? new AuthClient(this.o.server, { credentials: tlsCredentials({ ca: this.o.ca }), token: auth.token, timeoutMs: 30_000 })
          : new AuthClient(this.o.server, { credentials: tlsCredentials({ ca: this.o.ca, ...auth }), timeoutMs: 30_000 });
      try {
        const res = await client.signNodeCertificate(this.o.nodeName, csr, { signal, usage });
        if (usage === "serving" && !(new X509Certificate(res.certificate).keyUsage ?? []).includes(SERVER_AUTH)) {
          throw new RpcError(grpc.status.INVALID_ARGUMENT, "the server signed a certificate without serverAuth: it does not sign serving certificates (an older server?)");
        }
        const pair = { cert: res.certificate, key: privateKeyPem(keys.privateKey) };
        writePrivateFile(join(this.o.certDir, names.key), pair.key);
        writePrivateFile(join(this.o.certDir, names.cert), pair.cert);
        writePrivateFile(join(this.o.certDir, "ca.crt"), res.caCertificate);
        this.pair = pair;
        this.o.log.info({ node: this.o.nodeName, notAfter: res.expirationTimestamp?.toISOString(), certDir: this.o.certDir }, `got a ${names.what} certificate`);
        return;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof RpcError && PERMANENT.has(err.code)) throw new Error(`the server refused the ${names.what} certificate: ${err.message}`);
        this.o.log.warn({ node: this.o.nodeName, err: err instanceof Error ? err.message : String(err) }, `asking for a ${names.what} certificate failed; retrying`);
        await sleep(backoff.next(0), signal);
      } finally {
        client.close();
      }
    }
  }
}

/** When to renew a certificate valid from `validFrom` to `validTo` (ms): a random point in `window` of its life. */
export function renewalTime(validFrom: number, validTo: number, window: [number, number] = [0.7, 0.9], random: () => number = Math.random): number {
  const [from, to] = window;
  return validFrom + (validTo - validFrom) * (from + random() * (to - from));
}

/** A timer holds at most 2^31-1 ms (24.8 days; longer ones fire at once): wait in steps of a day. */
export async function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  const DAY = 24 * 3_600_000;
  while (!signal.aborted && Date.now() < at) await sleep(Math.min(DAY, at - Date.now()), signal);
}

/** Wait `ms`, or less if the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return sleepOn(systemClock, ms, signal);
}
