/**
 * How `nodeplane agent` connects, from its flags and files (kubelet's names):
 *
 * - --kubeconfig FILE: server, CA, client certificate/key or token (kubeconfig-shaped, or the
 *   older `server: host:port`); --server, --certificate-authority, --client-certificate,
 *   --client-key and --token override it.
 * - Node certificates: with --bootstrap-token (or --bootstrap-kubeconfig), or when --cert-dir
 *   already holds this node's certificate, the agent authenticates with a certificate of its
 *   own (node-certificates.ts), obtained with the token the first time and renewed before it
 *   expires (--rotate-certificates).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NodeClient } from "../client/client.js";
import { clientOptions } from "./client-credentials.js";
import { type ConnectionSettings, type CredentialFlags, parseServerUrl, readKubeconfig, withCredentialFlags } from "./kubeconfig.js";
import { NodeCertificates, type NodeCertificatesOptions } from "./node-certificates.js";

export interface AgentConnectionFlags extends CredentialFlags {
  server?: string;
  kubeconfig?: string;
  bootstrapKubeconfig?: string;
  bootstrapToken?: string;
  certDir: string;
  rotateCertificates: boolean;
}

export interface AgentConnection {
  client: NodeClient;
  /** How it authenticates, for the start-up log line. */
  auth: "none" | "token" | "client certificate" | "node certificate";
  /** Stop rotating certificates. */
  stop(): void;
  /**
   * With a node certificate: obtain the serving certificate of the agent's endpoint (from
   * --cert-dir, else signed by the server, asked for with the node certificate) and the cluster
   * CA callers must chain to.
   */
  serving?: (signal: AbortSignal) => Promise<{ certs: NodeCertificates; clusterCa: string; client: NodeCertificates }>;
}


/** @throws Error naming the flag or file at fault. */
export async function connectAgent(f: AgentConnectionFlags, nodeName: string, log: NodeCertificatesOptions["log"], signal: AbortSignal): Promise<AgentConnection> {
  const fromFile: ConnectionSettings = f.kubeconfig ? wrap("--kubeconfig", () => readKubeconfig(f.kubeconfig!)) : {};
  const bootstrap: ConnectionSettings = f.bootstrapKubeconfig ? wrap("--bootstrap-kubeconfig", () => readKubeconfig(f.bootstrapKubeconfig!)) : {};
  if (f.server) Object.assign(fromFile, wrap("--server", () => parseServerUrl(f.server!, "--server")));
  const settings = withCredentialFlags(fromFile, f, readFlagFile);
  const server = settings.server ?? bootstrap.server ?? "127.0.0.1:50051";

  const token = f.bootstrapToken ?? bootstrap.token;
  const haveNodeCert = existsSync(join(f.certDir, "node.crt"));
  if (token !== undefined || (haveNodeCert && settings.cert === undefined && settings.token === undefined)) {
    const savedCa = join(f.certDir, "ca.crt");
    const ca = settings.ca ?? bootstrap.ca ?? (existsSync(savedCa) ? readFileSync(savedCa, "utf8") : undefined);
    if (!ca) {
      throw new Error(
        "a node certificate needs the server's CA to verify it with (--certificate-authority FILE, or certificate-authority in --kubeconfig / --bootstrap-kubeconfig): without it, anyone answering at the server's address could take the bootstrap token",
      );
    }
    const options: NodeCertificatesOptions = { server, ca, certDir: f.certDir, nodeName, bootstrapToken: token, log };
    const certs = await NodeCertificates.obtain(options, signal);
    const client = new NodeClient(server, { credentials: certs.credentials() });
    const rotation = new AbortController();
    if (f.rotateCertificates) {
      certs.rotate(AbortSignal.any([signal, rotation.signal]), (credentials) => client.useCredentials(credentials)).catch((err: unknown) =>
        log.warn({ err: err instanceof Error ? err.message : String(err) }, "certificate rotation stopped"),
      );
    }
    const serving = async (s: AbortSignal) => {
      const servingCerts = await NodeCertificates.obtain({ ...options, bootstrapToken: undefined, usage: "serving", askWith: () => certs.current() }, s);
      return { certs: servingCerts, clusterCa: certs.clusterCa(), client: certs };
    };
    return { client, auth: "node certificate", stop: () => rotation.abort(), serving };
  }
  const options = wrap("connection", () => clientOptions(settings));
  const auth = settings.cert ? "client certificate" : settings.token ? "token" : "none";
  return { client: new NodeClient(server, options), auth, stop: () => {} };
}

function readFlagFile(path: string, flag: string): string {
  return wrap(flag, () => readFileSync(path, "utf8"));
}

function wrap<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(message.startsWith(what) ? message : `${what}: ${message}`);
  }
}
