/**
 * `nodeplane serve`'s security flags, named as kube-apiserver and k3s name them where they have
 * one (--tls-cert-file, --client-ca-file, --token-auth-file, --cluster-signing-*, --tls-san,
 * --write-kubeconfig), and how they become SecurityOptions.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import type { SecurityOptions } from "../auth/setup.js";
import { DEFAULT_LIMITS } from "../auth/limits.js";
import { durationOption, parseBytes, parseRate } from "./flags.js";

/** The file flags are SecurityOptions' own fields; the rest are named as flags. */
export interface SecurityFlags
  extends Pick<SecurityOptions, "tlsCertFile" | "tlsPrivateKeyFile" | "clientCaFile" | "tokenAuthFile" | "clusterSigningCertFile" | "clusterSigningKeyFile" | "auditLogPath"> {
  tls: boolean;
  clusterSigningDuration: number;
  tlsSan: string[];
  writeKubeconfig: string;
  insecureAllowUnauthenticatedNonLoopback: boolean;
  maxRequestsPerSecondPerIdentity: number;
  maxRequestBurstPerIdentity: number;
  maxStreamsPerIdentity: number;
  maxNodeRequestSize: number;
}

/** Where nodectl looks for its config by default (src/cli/nodectl/session.ts). */
const DEFAULT_KUBECONFIG = join(homedir(), ".nodeplane", "config.yaml");

function parseCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number, 0 or more`);
  return n;
}

export function addSecurityOptions(cmd: Command): Command {
  return cmd
    .option("--tls", "serve TLS and require authentication; without --tls-cert-file, make a CA, a serving certificate and an admin credential in <data-dir>/pki on first start", false)
    .option("--tls-cert-file <file>", "serving certificate (PEM, with its chain); implies --tls")
    .option("--tls-private-key-file <file>", "the serving certificate's key (PEM)")
    .option("--client-ca-file <file>", "CA bundle client certificates are verified against (CN = user, O = groups)")
    .option("--token-auth-file <file>", "static bearer tokens, CSV lines token,user,uid,\"group1,group2\" (turns authentication on)")
    .option("--cluster-signing-cert-file <file>", "CA that signs node certificates (default with --tls and no files: the server's own CA)")
    .option("--cluster-signing-key-file <file>", "its key")
    .addOption(durationOption("--cluster-signing-duration <duration>", "lifetime of the node certificates signed", 8760 * 3_600_000))
    .option("--tls-san <names>", "extra DNS names or IPs for the serving certificate the server makes (comma separated)", (v: string, prev: string[]) => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)], [] as string[])
    .option("--write-kubeconfig <file>", "with the server's own PKI, also write the admin kubeconfig here (\"\" = only <data-dir>/pki/admin.kubeconfig)", DEFAULT_KUBECONFIG)
    .option("--insecure-allow-unauthenticated-non-loopback", "allow serving plaintext without authentication on an address other machines can reach (anyone who reaches it can change every node)", false)
    .option("--max-requests-per-second-per-identity <rate>", "requests per second each identity may make, with authentication on (0 = no limit)", parseRate, DEFAULT_LIMITS.qps)
    .option("--max-request-burst-per-identity <n>", "requests an idle identity may make at once", parseCount, DEFAULT_LIMITS.burst)
    .option("--max-streams-per-identity <n>", "open Watch and Heartbeat streams per identity (0 = no limit)", parseCount, DEFAULT_LIMITS.maxStreams)
    .option("--max-node-request-size <bytes>", "largest request a node or a bootstrap token may send (e.g. 1Mi)", parseBytes, DEFAULT_LIMITS.maxNodeRequestBytes)
    .option("--audit-log-path <file>", "audit log (one JSON line per change): a file, or - for the server log (default with authentication on: the server log)");
}

export function securityOptionsFrom(f: SecurityFlags): SecurityOptions {
  const { tlsCertFile, tlsPrivateKeyFile, clientCaFile, tokenAuthFile, clusterSigningCertFile, clusterSigningKeyFile, auditLogPath } = f;
  return {
    tls: f.tls,
    tlsCertFile,
    tlsPrivateKeyFile,
    clientCaFile,
    tokenAuthFile,
    clusterSigningCertFile,
    clusterSigningKeyFile,
    auditLogPath,
    clusterSigningDurationMs: f.clusterSigningDuration,
    tlsSans: f.tlsSan,
    writeKubeconfig: f.writeKubeconfig || undefined,
    insecureAllowUnauthenticatedNonLoopback: f.insecureAllowUnauthenticatedNonLoopback,
    limits: { qps: f.maxRequestsPerSecondPerIdentity, burst: f.maxRequestBurstPerIdentity, maxStreams: f.maxStreamsPerIdentity, maxNodeRequestBytes: f.maxNodeRequestSize },
  };
}
