/**
 * Signing node client certificates (kubelet TLS bootstrapping, with the approval built in).
 * A request carries a node name and a PKCS#10 CSR whose subject must be exactly
 * `CN=system:node:<name>, O=system:nodes`. Who may get what:
 *
 * - a node renews its own certificate (the authorizer lets `system:node:N` ask only for N);
 * - an operator may get one for any node;
 * - a bootstrap token may get one only for a name that is free: no Node of that name exists,
 *   and no other live bootstrap token has claimed it. The token then claims the name
 *   (/registry/nodebootstrap/<name>), in the same transaction that checks the Node is still
 *   absent, so two tokens (or two replicas) cannot both win it. The same token may ask again
 *   while the Node does not exist yet (an agent that lost its key before registering). Once
 *   the node has registered, no token can obtain its name: a stolen token can make new nodes
 *   (restrict that with the token's node names), never become an existing one. A claim ends
 *   after an hour (the agent has long registered by then, and the Node's existence protects
 *   the name), or when its token is deleted or expires.
 *
 * A node's second certificate, the serving certificate of its agent endpoint (usage "serving",
 * as Kubernetes' kubelet-serving signer), has the same subject and key rules but is signed only
 * for the node itself (or an operator), never for a bootstrap token. It carries serverAuth and
 * no DNS or IP names at all: the control plane verifies it by its subject (CN=system:node:<name>,
 * src/proxy/agent-dialer.ts), so no client that checks host names can ever take it for another
 * host's certificate — a node could otherwise name the server's own address and pass for it.
 */
import type { Clock } from "../clock.js";
import { InvalidError, PermissionDeniedError, UnavailableError } from "../errors.js";
import { nodeKey } from "../model/keys.js";
import type { Store } from "../store/store.js";
import { dns1123SubdomainViolations } from "../validation/names.js";
import type { BootstrapTokens } from "./bootstrap-tokens.js";
import { BOOTSTRAP_USER_PREFIX, describeIdentity, GROUPS, type Identity, NODE_USER_PREFIX } from "./identity.js";
import { type Issuer, issueCertificate, readCsr } from "./pki.js";

const CLAIM_PREFIX = "/registry/nodebootstrap/";
/** How long a claim keeps a name from other tokens: ample time for the agent to register. */
const CLAIM_TTL_MS = 3_600_000;
export const DEFAULT_NODE_CERT_TTL_MS = 365 * 24 * 3_600_000;

interface Claim {
  tokenId: string;
  claimedAt: number;
}

export interface SignedNodeCertificate {
  certPem: string;
  caPem: string;
  notAfter: Date;
}

export interface SignerOptions {
  /** The cluster signing CA; undefined = signing is not available. */
  issuer: Issuer | undefined;
  store: Store;
  tokens: BootstrapTokens;
  clock: Clock;
  /** Lifetime of the certificates signed (--cluster-signing-duration). */
  certTtlMs: number;
}

export class NodeCertificateSigner {
  constructor(private readonly o: SignerOptions) {}

  /**
   * @throws InvalidError (name, CSR), PermissionDeniedError (a bootstrap token and a taken name, or a serving certificate),
   * UnavailableError (no signing CA).
   */
  async sign(identity: Identity, nodeName: string, csrPem: string, usage: "client" | "serving" = "client"): Promise<SignedNodeCertificate> {
    const issuer = this.o.issuer;
    if (!issuer) {
      throw new UnavailableError(
        "node certificate signing is not available: this server has no cluster signing CA (start it with --tls to make its own PKI, or give --cluster-signing-cert-file and --cluster-signing-key-file)",
      );
    }
    const nameRules = dns1123SubdomainViolations(nodeName);
    if (nameRules.length > 0) throw InvalidError.of("node_name", nodeName, nameRules.join("; "));
    const csr = await readCsr(csrPem, "certificate_signing_request");
    const wantCn = NODE_USER_PREFIX + nodeName;
    const problems: string[] = [];
    if (csr.commonName !== wantCn) problems.push(`its CN must be ${JSON.stringify(wantCn)}, not ${JSON.stringify(csr.commonName)}`);
    if (csr.organizations.length !== 1 || csr.organizations[0] !== GROUPS.nodes) problems.push(`its only O must be ${JSON.stringify(GROUPS.nodes)}`);
    if (csr.otherAttributes.length > 0) problems.push(`it may not carry other subject attributes (${csr.otherAttributes.join(", ")})`);
    const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string; modulusLength?: number };
    const keyOk = alg.name === "ECDSA" ? alg.namedCurve === "P-256" || alg.namedCurve === "P-384" : (alg.modulusLength ?? 0) >= 2048;
    if (!keyOk) problems.push("its key must be ECDSA P-256/P-384 or RSA of at least 2048 bits");
    if (problems.length > 0) throw InvalidError.of("certificate_signing_request", csr.commonName, problems.join("; "));

    if (identity.groups.includes(GROUPS.bootstrappers) && identity.user.startsWith(BOOTSTRAP_USER_PREFIX)) {
      if (usage === "serving") {
        throw new PermissionDeniedError(
          `${describeIdentity(identity)} cannot get a serving certificate for node ${JSON.stringify(nodeName)}: a bootstrap token gets the client certificate only; the node asks for its serving certificate with that`,
        );
      }
      await this.claim(identity, identity.user.slice(BOOTSTRAP_USER_PREFIX.length), nodeName);
    }
    const now = this.o.clock.now();
    const notAfter = new Date(now + this.o.certTtlMs);
    const certPem = await issueCertificate(issuer, {
      subject: { commonName: wantCn, organizations: [GROUPS.nodes] },
      publicKey: csr.publicKey,
      usage: usage === "serving" ? "server" : "client",
      // Backdated a little for clocks that run behind ours.
      notBefore: new Date(now - Math.min(60_000, this.o.certTtlMs / 10)),
      notAfter,
    });
    return { certPem, caPem: issuer.certPem, notAfter };
  }

  /** Claim `nodeName` for the token, or refuse (see the file comment). */
  private async claim(identity: Identity, tokenId: string, nodeName: string): Promise<void> {
    const refuse = (why: string): PermissionDeniedError =>
      new PermissionDeniedError(`${describeIdentity(identity)} cannot get a certificate for node ${JSON.stringify(nodeName)}: ${why}`);
    const token = await this.o.tokens.get(tokenId);
    if (!token) throw refuse("its bootstrap token no longer exists");
    if (token.nodeNames.length > 0 && !token.nodeNames.includes(nodeName)) {
      throw refuse(`this bootstrap token is only for node names ${token.nodeNames.join(", ")}`);
    }
    const taken = refuse("the name is taken (a node of that name exists, or another bootstrap token has claimed it); bootstrap tokens only make new nodes");
    for (let attempt = 0; attempt < 8; attempt++) {
      const [node, claimKv] = await Promise.all([this.o.store.get(nodeKey(nodeName)), this.o.store.get(CLAIM_PREFIX + nodeName)]);
      if (node) throw taken;
      if (claimKv) {
        const claim = JSON.parse(new TextDecoder().decode(claimKv.value)) as Claim;
        const held = claim.tokenId !== tokenId && this.o.clock.now() - claim.claimedAt < CLAIM_TTL_MS;
        if (held && (await this.liveToken(claim.tokenId))) throw taken;
      }
      const value = new TextEncoder().encode(JSON.stringify({ tokenId, claimedAt: this.o.clock.now() } satisfies Claim));
      const res = await this.o.store.txn({
        compare: [
          { key: nodeKey(nodeName), modRevision: 0 },
          { key: CLAIM_PREFIX + nodeName, modRevision: claimKv?.modRevision ?? 0 },
        ],
        ops: [{ type: "put", key: CLAIM_PREFIX + nodeName, value }],
      });
      if (res.succeeded) return;
    }
    throw new UnavailableError(`too much contention claiming node name ${JSON.stringify(nodeName)}; retry`);
  }

  private async liveToken(id: string): Promise<boolean> {
    const t = await this.o.tokens.get(id);
    return t !== undefined && t.expiresAt > this.o.clock.now();
  }
}
