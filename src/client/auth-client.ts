/**
 * AuthClient: a NodeClient that also speaks nodeplane.v1.AuthService — bootstrap tokens, node
 * certificate signing, who-am-i. Same connection options, deadlines, AbortSignals and typed
 * errors as NodeClient.
 */
import {
  AuthServiceService as A,
  type BootstrapToken,
  type CreateBootstrapTokenResponse,
  NodeCertificateUsage,
  type SignNodeCertificateResponse,
  type WhoAmIResponse,
} from "../gen/nodeplane/v1/auth.js";
import { type CallOptions, NodeClient } from "./client.js";

export interface CreateTokenOptions extends CallOptions {
  /** Validity in ms (default: the server's, 24 h). */
  ttlMs?: number;
  description?: string;
  /** Only these node names may be bootstrapped with the token. */
  nodeNames?: string[];
}

export class AuthClient extends NodeClient {
  /** A new bootstrap token; `token` (id.secret) is in this answer only. */
  createBootstrapToken(opts: CreateTokenOptions = {}): Promise<CreateBootstrapTokenResponse> {
    const ms = opts.ttlMs ?? 0;
    const ttl = { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
    return this.unary(A.createBootstrapToken, { ttl, description: opts.description ?? "", nodeNames: opts.nodeNames ?? [] }, opts);
  }

  async listBootstrapTokens(opts?: CallOptions): Promise<BootstrapToken[]> {
    return (await this.unary(A.listBootstrapTokens, {}, opts)).bootstrapTokens;
  }

  /** Delete a token by its id (or the whole token); answers what it was. */
  async deleteBootstrapToken(id: string, opts?: CallOptions): Promise<BootstrapToken | undefined> {
    return (await this.unary(A.deleteBootstrapToken, { id }, opts)).bootstrapToken;
  }

  /** Have the cluster CA sign a node's CSR (PEM): its client certificate, or (`usage: "serving"`) its agent endpoint's serving certificate. */
  signNodeCertificate(nodeName: string, csrPem: string, opts: CallOptions & { usage?: "client" | "serving" } = {}): Promise<SignNodeCertificateResponse> {
    const usage = opts.usage === "serving" ? NodeCertificateUsage.NODE_CERTIFICATE_USAGE_SERVING : NodeCertificateUsage.NODE_CERTIFICATE_USAGE_UNSPECIFIED;
    return this.unary(A.signNodeCertificate, { nodeName, certificateSigningRequest: csrPem, usage }, opts);
  }

  /** Who the server thinks this client is. */
  whoAmI(opts?: CallOptions): Promise<WhoAmIResponse> {
    return this.unary(A.whoAmI, {}, opts);
  }
}
