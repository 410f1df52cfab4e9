/**
 * Which server nodectl talks to, and how: `--server`, else NODEPLANE_SERVER, else the config
 * file (--kubeconfig, else $NODEPLANE_CONFIG, else ~/.nodeplane/config.yaml — the file
 * `nodeplane serve --tls` writes), else 127.0.0.1:50051; each may list several replicas
 * ("a:50051,b:50051"), tried in the order given and failed over between. The config file is kubeconfig-shaped
 * (server, CA, client certificate and key, or token; or just `server: host:port`);
 * --certificate-authority, --client-certificate, --client-key and --token override it. The first
 * call is watched by a short connect timeout, so that an address where nothing answers fails in
 * seconds with one clear line.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { clientOptions } from "../../auth/client-credentials.js";
import { type ConnectionSettings, type CredentialFlags, parseServerUrl, readKubeconfig, withCredentialFlags } from "../../auth/kubeconfig.js";
import { ProxyClient } from "../../client/proxy-client.js";
import type { CallOptions, NodeClientOptions } from "../../client/client.js";
import { DeadlineExceededError } from "../../client/errors.js";
import { CliError, UnreachableError } from "./errors.js";

const DEFAULT_SERVER = "127.0.0.1:50051";

export interface ServerChoice {
  address: string;
  /** Where it came from, for `version` and error messages. */
  source: string;
}

export interface ConnectionFlags extends CredentialFlags {
  server?: string;
  kubeconfig?: string;
}

export interface Connection extends ServerChoice {
  /** The settings in force (the CA is what `token create --print-bootstrap-kubeconfig` hands on). */
  settings: ConnectionSettings;
  options: Pick<NodeClientOptions, "credentials" | "token">;
}

function guarded<T>(source: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CliError(message.startsWith(source) ? message : `${source}: ${message}`);
  }
}

/** The config file in force and what it says ({} when there is none). */
function configFile(flag: string | undefined, env: NodeJS.ProcessEnv, home: string): { path?: string; settings: ConnectionSettings } {
  const explicit = flag ?? env.NODEPLANE_CONFIG;
  const path = explicit || join(home, ".nodeplane", "config.yaml");
  if (explicit && !existsSync(path)) throw new CliError(`${flag !== undefined ? "--kubeconfig" : "NODEPLANE_CONFIG"}: ${path}: no such file`);
  if (!existsSync(path)) return { settings: {} };
  try {
    return { path, settings: readKubeconfig(path) };
  } catch (err) {
    throw new CliError(`config file ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function resolveServer(flag: string | undefined, env: NodeJS.ProcessEnv, home: string, kubeconfig?: string): ServerChoice {
  return pick(flag, env, configFile(kubeconfig, env, home));
}

function pick(flag: string | undefined, env: NodeJS.ProcessEnv, config: { path?: string; settings: ConnectionSettings }): ServerChoice & Pick<ConnectionSettings, "tls"> {
  const url = (value: string, source: string): ServerChoice & Pick<ConnectionSettings, "tls"> => {
    const { server, tls } = guarded(source, () => parseServerUrl(value, source));
    return { address: server!, source, tls };
  };
  if (flag !== undefined) return url(flag, "--server");
  if (env.NODEPLANE_SERVER) return url(env.NODEPLANE_SERVER, "NODEPLANE_SERVER");
  if (config.path && config.settings.server) return { address: config.settings.server, source: config.path, tls: config.settings.tls };
  return { address: DEFAULT_SERVER, source: "default" };
}

/** The server and the credentials to reach it with. */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv, home: string): Connection {
  const config = configFile(flags.kubeconfig, env, home);
  const { tls, ...choice } = pick(flags.server, env, config);
  const read = (path: string, flag: string): string => guarded(flag, () => readFileSync(path, "utf8"));
  const settings = withCredentialFlags({ ...config.settings, server: choice.address, ...(tls !== undefined ? { tls } : {}) }, flags, read);
  return { ...choice, settings, options: guarded("credentials", () => clientOptions(settings)) };
}

export interface SessionOptions {
  /** TLS credentials and token (default: plaintext, no token). */
  client?: Pick<NodeClientOptions, "credentials" | "token">;
  /** How long the first call may wait for a connection (default 5 s). */
  connectTimeoutMs?: number;
  /** Deadline of each call (default 30 s). */
  requestTimeoutMs?: number;
}

/** A NodeClient whose first call fails fast when no server answers. */
export class Session {
  readonly client: ProxyClient;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  private connected = false;

  constructor(
    readonly address: string,
    opts: SessionOptions = {},
  ) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.client = new ProxyClient(address, { ...opts.client, timeoutMs: this.requestTimeoutMs });
  }

  /**
   * Run one call. Until a connection has been made, the call is raced against the connect
   * timeout: an address that answers nothing fails with UnreachableError, not after the full
   * request deadline. (A refused connection fails at once with UNAVAILABLE by itself.)
   */
  async call<T>(fn: (opts: CallOptions) => Promise<T>): Promise<T> {
    if (this.connected) return fn({ timeoutMs: this.requestTimeoutMs });
    const abort = new AbortController();
    const call = fn({ signal: abort.signal, timeoutMs: this.requestTimeoutMs });
    const ready = this.client.waitForReady(this.connectTimeoutMs).then(
      () => {
        this.connected = true;
        return "ready" as const;
      },
      () => "timeout" as const,
    );
    const first = await Promise.race([call.then(() => "done" as const, () => "done" as const), ready]);
    if (first === "timeout" && !this.connected) {
      abort.abort();
      call.catch(() => {});
      throw new UnreachableError(this.address, `no connection within ${this.connectTimeoutMs / 1000}s`);
    }
    try {
      const out = await call;
      this.connected = true;
      return out;
    } catch (err) {
      // The deadline passed before any connection was made: say so, not "timeout".
      if (err instanceof DeadlineExceededError && !this.connected) {
        throw new UnreachableError(this.address, `no connection within ${this.requestTimeoutMs / 1000}s`);
      }
      throw err;
    }
  }

  close(): void {
    this.client.close();
  }
}
