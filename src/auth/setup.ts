/**
 * The server's security, put together from its flags: TLS material (given files, or the PKI it
 * makes itself), authentication (client certificates, --token-auth-file, bootstrap tokens),
 * the gate every RPC passes, the auth service, per-identity limits and the audit log.
 *
 * Authentication is on when the server serves TLS or has a token file. Without it, the server
 * may listen on loopback only (the embedded default, where `grpcurl -plaintext` works): binding
 * an address other machines can reach without TLS and authentication is refused at start-up,
 * unless --insecure-allow-unauthenticated-non-loopback says so.
 */
import * as grpc from "@grpc/grpc-js";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pino, type Logger } from "pino";
import type { Clock } from "../clock.js";
import { AuthServiceService } from "../gen/nodeplane/v1/auth.js";
import type { ServerMetrics } from "../server/metrics.js";
import type { Store } from "../store/store.js";
import { AccessControl } from "./access.js";
import { isLoopbackHost, splitHostPort } from "./addresses.js";
import { AuditLog } from "./audit.js";
import { authService } from "./auth-service.js";
import { Authenticator } from "./authenticator.js";
import { BootstrapTokens } from "./bootstrap-tokens.js";
import { ControlPlaneCredentials } from "./control-plane.js";
import { DEFAULT_NODE_CERT_TTL_MS, NodeCertificateSigner } from "./csr-signer.js";
import { AuthGate } from "./gate.js";
import { readKubeconfig, WRITTEN_BY, writeKubeconfig } from "./kubeconfig.js";
import { DEFAULT_LIMITS, IdentityLimits, type LimitOptions } from "./limits.js";
import type { PeerCredentials, TlsMaterial } from "./listener.js";
import type { Calls } from "../server/calls.js";
import { ensureServerPki, servingHosts, type ServerPki } from "./pki-files.js";
import { type Issuer, loadIssuer } from "./pki.js";
import { TokenFile } from "./token-file.js";

export interface SecurityOptions {
  /** Serve TLS; with no certificate files, make (or reuse) a PKI in <data-dir>/pki. */
  tls?: boolean;
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  /** CAs client certificates are verified against (default with the own PKI: its CA). */
  clientCaFile?: string;
  tokenAuthFile?: string;
  /** The CA that signs node certificates (default with the own PKI: its CA). */
  clusterSigningCertFile?: string;
  clusterSigningKeyFile?: string;
  /** Lifetime of signed node certificates (default 1 year). */
  clusterSigningDurationMs?: number;
  /** Extra names for the serving certificate the server makes. */
  tlsSans?: string[];
  /** Also write the admin kubeconfig here (when the server made its PKI). */
  writeKubeconfig?: string;
  insecureAllowUnauthenticatedNonLoopback?: boolean;
  limits?: Partial<Omit<LimitOptions, "clock">>;
  /** Audit log: a file path, "-" for the server log; default: the server log when authentication is on, none otherwise. */
  auditLogPath?: string;
}

export interface SecurityContext {
  dataDir: string;
  listen: string;
  httpListen: string | null;
  store: Store;
  clock: Clock;
  log: Logger;
  metrics: ServerMetrics;
}

export class Security {
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(
    readonly tls: TlsMaterial | undefined,
    readonly access: AccessControl,
    readonly gate: AuthGate,
    private readonly tokens: BootstrapTokens,
    private readonly signer: NodeCertificateSigner,
    private readonly limits: IdentityLimits | undefined,
    private readonly pki: ServerPki | undefined,
    private readonly o: SecurityOptions,
    private readonly ctx: SecurityContext,
    /** What the server dials node agents with (from the cluster signing CA); undefined without one. */
    readonly controlPlane: ControlPlaneCredentials | undefined,
  ) {}

  /**
   * Refuse bad flag combinations and an exposed address without TLS and authentication, from the
   * options alone (before the store is opened or anything is made).
   */
  static check(o: SecurityOptions = {}, listen: string, httpListen: string | null): void {
    const explicitTls = o.tlsCertFile !== undefined || o.tlsPrivateKeyFile !== undefined;
    if (explicitTls && (o.tlsCertFile === undefined || o.tlsPrivateKeyFile === undefined)) {
      throw new Error("--tls-cert-file and --tls-private-key-file go together");
    }
    if ((o.clusterSigningCertFile === undefined) !== (o.clusterSigningKeyFile === undefined)) {
      throw new Error("--cluster-signing-cert-file and --cluster-signing-key-file go together");
    }
    const tls = o.tls === true || explicitTls;
    if (!tls && (o.clientCaFile !== undefined || o.clusterSigningCertFile !== undefined)) {
      throw new Error("--client-ca-file and --cluster-signing-cert-file need TLS: add --tls (or --tls-cert-file and --tls-private-key-file)");
    }
    if (explicitTls && o.clientCaFile === undefined && o.tokenAuthFile === undefined && o.clusterSigningCertFile === undefined) {
      throw new Error("TLS without --client-ca-file or --token-auth-file: no client could authenticate; give one of them (or use --tls alone, which makes its own CA)");
    }
    checkExposure(listen, httpListen, o, tls || o.tokenAuthFile !== undefined, tls);
  }

  /** @throws Error with a message for unreadable or unusable files (nothing has been bound yet). */
  static async create(o: SecurityOptions = {}, ctx: SecurityContext): Promise<Security> {
    Security.check(o, ctx.listen, ctx.httpListen);
    const { log, clock } = ctx;
    const explicitTls = o.tlsCertFile !== undefined;
    const tlsOn = o.tls === true || explicitTls;
    let pki: ServerPki | undefined;
    let tls: TlsMaterial | undefined;
    let issuer: Issuer | undefined;
    const clientCas: string[] = [];
    if (tlsOn && !explicitTls) {
      const hosts = servingHosts([ctx.listen, ...(ctx.httpListen ? [ctx.httpListen] : [])].map((a) => splitHostPort(a).host), o.tlsSans ?? []);
      const made = await ensureServerPki(join(ctx.dataDir, "pki"), hosts, clock.now());
      pki = made.pki;
      if (made.made.length > 0) log.info({ dir: pki.dir, files: made.made }, "made PKI files");
      tls = { cert: pki.server.cert, key: pki.server.key };
      issuer = pki.issuer;
      clientCas.push(pki.caPem);
    } else if (explicitTls) {
      tls = { cert: readPem(o.tlsCertFile!, "--tls-cert-file"), key: readPem(o.tlsPrivateKeyFile!, "--tls-private-key-file") };
    }
    if (o.clusterSigningCertFile !== undefined) {
      issuer = await loadIssuer(readPem(o.clusterSigningCertFile, "--cluster-signing-cert-file"), readPem(o.clusterSigningKeyFile!, "--cluster-signing-key-file")).catch(
        (err: unknown) => {
          throw new Error(`--cluster-signing-key-file: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
      clientCas.push(issuer.certPem); // node certificates it signs must verify
    }
    if (o.clientCaFile !== undefined) clientCas.push(readPem(o.clientCaFile, "--client-ca-file"));
    if (tls && clientCas.length > 0) tls.clientCa = clientCas.join("\n");
    const tokenFile = o.tokenAuthFile !== undefined ? TokenFile.read(o.tokenAuthFile) : undefined;
    const enabled = tls !== undefined || tokenFile !== undefined;

    const tokens = new BootstrapTokens({ store: ctx.store, clock });
    const access = new AccessControl(enabled ? new Authenticator({ tokenFile, bootstrapTokens: tokens, clock }) : undefined);
    const limits = enabled ? new IdentityLimits({ ...DEFAULT_LIMITS, ...o.limits, clock }) : undefined;
    const audit = auditLog(o, enabled, log);
    const gate = new AuthGate({
      access,
      limits,
      audit,
      store: ctx.store,
      clock,
      metrics: ctx.metrics.registry,
      log: log.child({ component: "auth" }),
    });
    const signer = new NodeCertificateSigner({ issuer, store: ctx.store, tokens, clock, certTtlMs: o.clusterSigningDurationMs ?? DEFAULT_NODE_CERT_TTL_MS });
    const controlPlane = issuer && new ControlPlaneCredentials(issuer, clock);
    const security = new Security(tls, access, gate, tokens, signer, limits, pki, o, ctx, controlPlane);
    log.info({ authentication: enabled, tls: tls !== undefined, clientCertificates: tls?.clientCa !== undefined, tokenFile: tokenFile?.size ?? 0, auditLog: audit !== undefined }, "security");
    return security;
  }

  get enabled(): boolean {
    return this.access.enabled;
  }

  /** grpc.Server options: the gate as an interceptor (none when it has nothing to do). */
  serverOptions(): Pick<grpc.ServerOptions, "interceptors"> {
    return this.gate.active ? { interceptors: [this.gate.interceptor] } : {};
  }

  addServices(server: Pick<grpc.Server, "addService">, calls: Calls): void {
    server.addService(AuthServiceService, authService({ tokens: this.tokens, signer: this.signer, gate: this.gate, calls }));
  }

  /**
   * The gRPC port is bound (by src/server/connections.ts, with TLS in front when on): learn
   * callers' certificates from it, start the background chores, write the admin kubeconfig.
   */
  attach(listener: PeerCredentials & { port: number }): void {
    this.gate.attach(listener);
    const sweep = setInterval(() => {
      this.limits?.sweep();
      this.tokens.sweep().catch((err: unknown) => this.ctx.log.warn({ err }, "bootstrap token sweep failed"));
    }, 60_000);
    sweep.unref();
    this.timers.push(sweep);
    if (this.pki) this.writeKubeconfigs(listener.port);
  }

  /** Stop the chores (the listener and the grpc server end connections and calls). */
  close(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  private writeKubeconfigs(port: number): void {
    const pki = this.pki!;
    const { host } = splitHostPort(this.ctx.listen);
    const reachable = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
    const server = `${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
    const contents = { server, ca: pki.caPem, cert: pki.admin.cert, key: pki.admin.key };
    const own = join(pki.dir, "admin.kubeconfig");
    writeKubeconfig(own, contents);
    const extra = this.o.writeKubeconfig;
    if (!extra) return;
    if (existsSync(extra) && !readFileSync(extra, "utf8").startsWith(WRITTEN_BY)) {
      this.ctx.log.warn({ path: extra, copy: own }, "not overwriting a kubeconfig nodeplane did not write; use the copy in the data dir");
      return;
    }
    writeKubeconfig(extra, contents);
    readKubeconfig(extra); // what nodectl will read must parse
    this.ctx.log.info({ path: extra }, "wrote the admin kubeconfig");
  }
}

/** Refuse to serve other machines without TLS and authentication (unless told to). */
function checkExposure(listen: string, httpListen: string | null, o: SecurityOptions, authn: boolean, tls: boolean): void {
  if ((authn && tls) || o.insecureAllowUnauthenticatedNonLoopback) return;
  for (const [flag, address] of [["--listen", listen], ["--http-listen", httpListen]] as const) {
    if (!address) continue;
    const { host } = splitHostPort(address);
    if (isLoopbackHost(host)) continue;
    throw new Error(
      `refusing to serve ${flag} ${address} without ${tls ? "authentication" : "TLS and authentication"}: other machines could reach it and change every node. ` +
        "Add --tls (the server makes its own CA and credentials), or listen on 127.0.0.1, or pass --insecure-allow-unauthenticated-non-loopback if you really mean it",
    );
  }
}

function auditLog(o: SecurityOptions, enabled: boolean, log: Logger): AuditLog | undefined {
  const path = o.auditLogPath ?? (enabled ? "-" : undefined);
  if (path === undefined || path === "") return undefined;
  if (path === "-") return new AuditLog(log.child({ component: "audit" }));
  return new AuditLog(pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: path, mkdir: true, sync: false })));
}

function readPem(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${flag} ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
