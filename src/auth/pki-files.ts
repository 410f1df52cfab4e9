/**
 * The server's own PKI, made on first start with --tls and no certificate files given (as k3s
 * does), kept in <data-dir>/pki and reused on later starts:
 *
 *   ca.crt, ca.key          the cluster CA (10 years): signs the serving certificate, the admin
 *                           credential and node certificates; client certificates are verified
 *                           against it
 *   server.crt, server.key  the serving certificate (1 year) for localhost, 127.0.0.1, ::1, the
 *                           host name, the listen address (every interface address when
 *                           listening on all) and --tls-san; made again when a name is missing
 *                           or it has less than 30 days left
 *   admin.crt, admin.key    a client credential CN=nodeplane-admin, O=system:masters (1 year;
 *                           renewed with 30 days left)
 *
 * Keys are written with mode 0600 in a 0700 directory. Replicas of one cluster must share one
 * CA: copy the pki directory to each, or give the files by flags.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { GROUPS } from "./identity.js";
import { writePrivateFile } from "./kubeconfig.js";
import { createCertificateAuthority, generateKeyPair, issueCertificate, type Issuer, loadIssuer, privateKeyPem } from "./pki.js";

const DAY = 24 * 3_600_000;
const RENEW_BEFORE_MS = 30 * DAY;
const ADMIN_USER = "nodeplane-admin";

export interface ServerPki {
  dir: string;
  issuer: Issuer;
  caPem: string;
  server: { cert: string; key: string };
  admin: { cert: string; key: string };
}

/** Load the PKI under `dir`, making what is missing or due. */
export async function ensureServerPki(dir: string, hosts: readonly string[], now: number): Promise<{ pki: ServerPki; made: string[] }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const made: string[] = [];
  const file = (name: string): string => join(dir, name);
  const read = (name: string): string | undefined => (existsSync(file(name)) ? readFileSync(file(name), "utf8") : undefined);

  let issuer: Issuer;
  const caCert = read("ca.crt");
  const caKey = read("ca.key");
  if (caCert && caKey) {
    issuer = await loadIssuer(caCert, caKey);
  } else {
    const ca = await createCertificateAuthority(`nodeplane-ca@${Math.floor(now / 1000)}`, new Date(now - 60_000), new Date(now + 3650 * DAY));
    writePrivateFile(file("ca.key"), ca.keyPem);
    writePrivateFile(file("ca.crt"), ca.issuer.certPem);
    issuer = ca.issuer;
    made.push("ca.crt", "ca.key");
  }

  const issue = async (name: string, usage: "server" | "client", subject: { commonName: string; organizations?: string[] }, names?: readonly string[]) => {
    const keys = await generateKeyPair();
    const cert = await issueCertificate(issuer, { subject, publicKey: keys.publicKey, usage, hosts: names, notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * DAY) });
    const key = privateKeyPem(keys.privateKey);
    writePrivateFile(file(`${name}.key`), key);
    writePrivateFile(file(`${name}.crt`), cert);
    made.push(`${name}.crt`, `${name}.key`);
    return { cert, key };
  };
  const current = (name: string, ok: (c: X509Certificate) => boolean): { cert: string; key: string } | undefined => {
    const cert = read(`${name}.crt`);
    const key = read(`${name}.key`);
    if (!cert || !key) return undefined;
    const parsed = new X509Certificate(cert);
    const fresh = Date.parse(parsed.validTo) - now > RENEW_BEFORE_MS && parsed.checkIssued(new X509Certificate(issuer.certPem));
    return fresh && ok(parsed) ? { cert, key } : undefined;
  };

  const covers = (c: X509Certificate): boolean => hosts.every((h) => (isIP(h) ? c.checkIP(h) !== undefined : c.checkHost(h) !== undefined));
  const server = current("server", covers) ?? (await issue("server", "server", { commonName: "nodeplane" }, hosts));
  const admin = current("admin", () => true) ?? (await issue("admin", "client", { commonName: ADMIN_USER, organizations: [GROUPS.masters] }));
  return { pki: { dir, issuer, caPem: issuer.certPem, server, admin }, made };
}

/** The names a serving certificate for `listenHost` should carry. */
export function servingHosts(listenHosts: readonly string[], extra: readonly string[]): string[] {
  const hosts = new Set<string>(["localhost", "127.0.0.1", "::1", hostname().toLowerCase()]);
  for (const h of listenHosts) {
    if (h === "0.0.0.0" || h === "::" || h === "") {
      for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) hosts.add(a.address.split("%")[0]!);
    } else {
      hosts.add(h);
    }
  }
  for (const h of extra) hosts.add(h);
  return [...hosts];
}
