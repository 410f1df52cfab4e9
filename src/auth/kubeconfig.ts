/**
 * Client connection settings from a kubeconfig-shaped YAML file, as the agent's --kubeconfig and
 * nodectl's config read it (and as `nodeplane serve --tls` writes one for the admin):
 *
 *   apiVersion: v1
 *   kind: Config
 *   clusters: [{name: nodeplane, cluster: {server: https://127.0.0.1:50051, certificate-authority-data: <base64 PEM>}}]
 *   users: [{name: admin, user: {client-certificate-data: …, client-key-data: …}}]   # or token: <bearer token>
 *   contexts: [{name: nodeplane, context: {cluster: nodeplane, user: admin}}]
 *   current-context: nodeplane
 *
 * `certificate-authority`, `client-certificate`, `client-key` may name files instead (relative
 * to the config file). The older flat form `server: host:port` still works. A server URL
 * `https://…` means TLS; a bare host:port means TLS when a CA is configured.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";

/** Where and how to connect, with PEM contents already read. */
export interface ConnectionSettings {
  /** host:port */
  server?: string;
  /** Use TLS. */
  tls?: boolean;
  /** PEM CA bundle to verify the server with. */
  ca?: string;
  /** PEM client certificate and key. */
  cert?: string;
  key?: string;
  /** Bearer token. */
  token?: string;
}

/** Marks a file `nodeplane serve` wrote, so it knows it may write it again. */
export const WRITTEN_BY = "# nodeplane admin kubeconfig: written by `nodeplane serve`; rewritten on start while this line is here";

type Doc = Record<string, unknown>;

/** @throws Error naming the file and the problem. */
export function readKubeconfig(path: string): ConnectionSettings {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new Error(`${path}: expected a YAML mapping (a kubeconfig, or "server: host:port")`);
  const d = doc as Doc;
  if (!("clusters" in d) && !("users" in d) && !("contexts" in d)) {
    const { server, ...rest } = d;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw new Error(`${path}: unknown keys ${unknown.join(", ")} (known: server); a kubeconfig has clusters, users and contexts`);
    if (server === undefined || server === null) return {};
    if (typeof server !== "string") throw new Error(`${path}: server must be host:port`);
    return parseServerUrl(server, `${path}: server`);
  }
  return fromKubeconfig(d, path);
}

function fromKubeconfig(d: Doc, path: string): ConnectionSettings {
  const base = dirname(resolve(path));
  const contexts = namedList(d.contexts, "contexts", "context", path);
  const current = typeof d["current-context"] === "string" ? d["current-context"] : undefined;
  const context = current !== undefined ? contexts.get(current) : contexts.size === 1 ? [...contexts.values()][0] : undefined;
  if (current !== undefined && !context) throw new Error(`${path}: current-context ${JSON.stringify(current)} is not among contexts`);
  const clusters = namedList(d.clusters, "clusters", "cluster", path);
  const users = namedList(d.users, "users", "user", path);
  const clusterName = str(context?.cluster);
  const userName = str(context?.user);
  const cluster = clusterName !== undefined ? clusters.get(clusterName) : clusters.size === 1 ? [...clusters.values()][0] : undefined;
  const user = userName !== undefined ? users.get(userName) : users.size === 1 ? [...users.values()][0] : undefined;
  if (clusterName !== undefined && !cluster) throw new Error(`${path}: cluster ${JSON.stringify(clusterName)} is not among clusters`);
  if (userName !== undefined && !user) throw new Error(`${path}: user ${JSON.stringify(userName)} is not among users`);
  const out: ConnectionSettings = {};
  const server = str(cluster?.server);
  if (server !== undefined) Object.assign(out, parseServerUrl(server, `${path}: server`));
  const ca = pem(cluster, "certificate-authority", base, path);
  if (ca) out.ca = ca;
  const cert = pem(user, "client-certificate", base, path);
  const key = pem(user, "client-key", base, path);
  if (cert) out.cert = cert;
  if (key) out.key = key;
  const token = str(user?.token);
  if (token) out.token = token;
  if ((out.cert === undefined) !== (out.key === undefined)) throw new Error(`${path}: client-certificate and client-key go together`);
  if (out.ca && out.tls === undefined) out.tls = true;
  return out;
}

/** Credentials given by flags (kubectl's names), over those of a config file. */
export interface CredentialFlags {
  certificateAuthority?: string;
  clientCertificate?: string;
  clientKey?: string;
  token?: string;
}

/**
 * `settings` with the flags' credentials laid over it; `read` reads a flag's file (and names the
 * flag when it cannot). A credential given by flag replaces the other kind from the file: a
 * client certificate would otherwise win over a --token.
 */
export function withCredentialFlags(settings: ConnectionSettings, f: CredentialFlags, read: (path: string, flag: string) => string): ConnectionSettings {
  const out = { ...settings };
  if (f.certificateAuthority) out.ca = read(f.certificateAuthority, "--certificate-authority");
  if (f.clientCertificate) out.cert = read(f.clientCertificate, "--client-certificate");
  if (f.clientKey) out.key = read(f.clientKey, "--client-key");
  if (f.token) out.token = f.token;
  if (f.token && !f.clientCertificate) {
    delete out.cert;
    delete out.key;
  }
  if (f.clientCertificate && !f.token) delete out.token;
  return out;
}

/** "https://h:p" (TLS), "http://h:p" (plaintext) or "h:p" → host:port and whether TLS is asked for. */
export function parseServerUrl(value: string, what: string): Pick<ConnectionSettings, "server" | "tls"> {
  // One address, or several replicas of one cluster separated by commas ("a:50051,b:50051",
  // "https://a:50051,https://b:50051"): the SDK fails over between them. One scheme for all.
  const parsed = value.split(",").map((one) => {
    const m = /^(?:(https?):\/\/)?((?:\[[^\]]+\]|[^:/\s]+):\d{1,5})\/?$/.exec(one.trim());
    if (!m || Number(m[2]!.slice(m[2]!.lastIndexOf(":") + 1)) > 65535) {
      throw new Error(`${what}: ${JSON.stringify(one.trim())} is not host:port (e.g. 127.0.0.1:50051)`);
    }
    return { address: m[2]!, scheme: m[1] };
  });
  const schemes = new Set(parsed.map((p) => p.scheme ?? ""));
  if (schemes.size > 1) throw new Error(`${what}: ${JSON.stringify(value)} mixes schemes: give every replica the same one`);
  const scheme = parsed[0]!.scheme;
  return { server: parsed.map((p) => p.address).join(","), ...(scheme ? { tls: scheme === "https" } : {}) };
}

/** Write an admin kubeconfig (PEMs inline) with mode 0600, atomically. */
export function writeKubeconfig(path: string, s: { server: string; ca: string; cert: string; key: string }): void {
  writePrivateFile(path, `${WRITTEN_BY}\n${kubeconfigYaml("nodeplane-admin", s)}`);
}

/** A kubeconfig (PEMs inline) for one user: a client certificate and key, or a token. */
export function kubeconfigYaml(user: string, s: { server: string; ca: string; cert?: string; key?: string; token?: string }): string {
  const b64 = (text: string): string => Buffer.from(text).toString("base64");
  const credentials = s.token !== undefined ? { token: s.token } : { "client-certificate-data": b64(s.cert ?? ""), "client-key-data": b64(s.key ?? "") };
  return stringifyYaml({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "nodeplane", cluster: { server: `https://${s.server}`, "certificate-authority-data": b64(s.ca) } }],
    users: [{ name: user, user: credentials }],
    contexts: [{ name: "nodeplane", context: { cluster: "nodeplane", user } }],
    "current-context": "nodeplane",
  });
}

/** Write a file readable by its owner only, atomically (a temp file renamed over it). */
export function writePrivateFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function namedList(v: unknown, key: string, inner: string, path: string): Map<string, Doc> {
  const out = new Map<string, Doc>();
  if (v === undefined || v === null) return out;
  if (!Array.isArray(v)) throw new Error(`${path}: ${key} must be a list`);
  for (const item of v) {
    const name = str((item as Doc | null)?.name);
    const body = (item as Doc | null)?.[inner];
    if (name === undefined || typeof body !== "object" || body === null) throw new Error(`${path}: every entry of ${key} needs a name and a ${inner}`);
    out.set(name, body as Doc);
  }
  return out;
}

/** A PEM from `<field>-data` (base64) or `<field>` (a file path). */
function pem(section: Doc | undefined, field: string, base: string, path: string): string | undefined {
  const data = str(section?.[`${field}-data`]);
  if (data !== undefined) return Buffer.from(data, "base64").toString("utf8");
  const file = str(section?.[field]);
  if (file === undefined) return undefined;
  try {
    return readFileSync(resolve(base, file), "utf8");
  } catch (err) {
    throw new Error(`${path}: ${field}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
