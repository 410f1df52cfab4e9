/**
 * Which server nodectl talks to, and the connection to it: `--server`, else NODEPLANE_SERVER,
 * else the config file ($NODEPLANE_CONFIG, or ~/.nodeplane/config.yaml: `server: host:port`),
 * else 127.0.0.1:50051; each may list several replicas ("a:50051,b:50051"), tried in order and
 * failed over between. The first call is watched by a short connect timeout, so that an
 * address where nothing answers fails in seconds with one clear line.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { type CallOptions, NodeClient } from "../../client/client.js";
import { DeadlineExceededError } from "../../client/errors.js";
import { parseAddresses } from "../flags.js";
import { CliError, UnreachableError } from "./errors.js";

const DEFAULT_SERVER = "127.0.0.1:50051";

export interface ServerChoice {
  address: string;
  /** Where it came from, for `version` and error messages. */
  source: string;
}

function checked(value: string, source: string): string {
  try {
    return parseAddresses(value.trim());
  } catch (err) {
    throw new CliError(`${source}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The nodectl config file: a YAML mapping with `server: host:port`. */
function readConfig(path: string): { server?: string } {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw new CliError(`config file ${path}: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new CliError(`config file ${path}: expected a YAML mapping like "server: 127.0.0.1:50051"`);
  const { server, ...rest } = doc as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new CliError(`config file ${path}: unknown keys ${unknown.join(", ")} (known: server)`);
  if (server === undefined || server === null) return {};
  if (typeof server !== "string") throw new CliError(`config file ${path}: server must be host:port`);
  return { server: checked(server, `config file ${path}: server`) };
}

export function resolveServer(flag: string | undefined, env: NodeJS.ProcessEnv, home: string): ServerChoice {
  if (flag !== undefined) return { address: checked(flag, "--server"), source: "--server" };
  const fromEnv = env.NODEPLANE_SERVER;
  if (fromEnv) return { address: checked(fromEnv, "NODEPLANE_SERVER"), source: "NODEPLANE_SERVER" };
  const explicit = env.NODEPLANE_CONFIG;
  const path = explicit || join(home, ".nodeplane", "config.yaml");
  if (explicit && !existsSync(path)) throw new CliError(`NODEPLANE_CONFIG: ${path}: no such file`);
  if (existsSync(path)) {
    const { server } = readConfig(path);
    if (server) return { address: server, source: path };
  }
  return { address: DEFAULT_SERVER, source: "default" };
}

export interface SessionOptions {
  /** How long the first call may wait for a connection (default 5 s). */
  connectTimeoutMs?: number;
  /** Deadline of each call (default 30 s). */
  requestTimeoutMs?: number;
}

/** A NodeClient whose first call fails fast when no server answers. */
export class Session {
  readonly client: NodeClient;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  private connected = false;

  constructor(
    readonly address: string,
    opts: SessionOptions = {},
  ) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    // Several replicas: tried in the order given.
    this.client = new NodeClient(address, { timeoutMs: this.requestTimeoutMs, shuffle: false });
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
