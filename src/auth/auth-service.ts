/**
 * nodeplane.v1.AuthService: bootstrap tokens (create, list, delete), node certificate signing,
 * and who-am-i. Handlers are as short as NodeService's: the gate has already authenticated and
 * authorized the call; the caller's identity comes from the gate for the rules that need it
 * (who created a token, which token asks for a certificate).
 */
import { type AuthServiceServer, type BootstrapToken, NodeCertificateUsage } from "../gen/nodeplane/v1/auth.js";
import { InvalidError } from "../errors.js";
import { wrapUnary } from "../server/node-service.js";
import type { Calls } from "../server/calls.js";
import type { BootstrapTokenRecord, BootstrapTokens } from "./bootstrap-tokens.js";
import type { NodeCertificateSigner } from "./csr-signer.js";
import type { AuthGate } from "./gate.js";
import { anonymous } from "./identity.js";

export interface AuthServiceDeps {
  tokens: BootstrapTokens;
  signer: NodeCertificateSigner;
  gate: Pick<AuthGate, "identityOf">;
  /** The call wrapper every RPC goes through (request id, metrics, log line, error map). */
  calls: Calls;
}

const USAGES: Partial<Record<number, "client" | "serving">> = {
  [NodeCertificateUsage.NODE_CERTIFICATE_USAGE_UNSPECIFIED]: "client",
  [NodeCertificateUsage.NODE_CERTIFICATE_USAGE_CLIENT]: "client",
  [NodeCertificateUsage.NODE_CERTIFICATE_USAGE_SERVING]: "serving",
};

export function authService(deps: AuthServiceDeps): AuthServiceServer {
  const who = (call: { metadata: Parameters<AuthGate["identityOf"]>[0] }) => deps.gate.identityOf(call.metadata) ?? anonymous;
  return {
    createBootstrapToken: wrapUnary(deps, "CreateBootstrapToken", async (req, call) => {
      const ttl = req.ttl ? Number(req.ttl.seconds) * 1000 + Math.round(req.ttl.nanos / 1e6) : 0;
      const { token, record } = await deps.tokens.create({ ttlMs: ttl, description: req.description, nodeNames: req.nodeNames, createdBy: who(call).user });
      return { token, bootstrapToken: toMessage(record) };
    }),
    listBootstrapTokens: wrapUnary(deps, "ListBootstrapTokens", async () => ({ bootstrapTokens: (await deps.tokens.list()).map(toMessage) })),
    deleteBootstrapToken: wrapUnary(deps, "DeleteBootstrapToken", async (req) => ({ bootstrapToken: toMessage(await deps.tokens.delete(req.id)) })),
    signNodeCertificate: wrapUnary(deps, "SignNodeCertificate", async (req, call) => {
      const usage = USAGES[req.usage];
      if (!usage) throw InvalidError.of("usage", String(req.usage), "must be NODE_CERTIFICATE_USAGE_CLIENT (or unset) or NODE_CERTIFICATE_USAGE_SERVING");
      const signed = await deps.signer.sign(who(call), req.nodeName, req.certificateSigningRequest, usage);
      return { certificate: signed.certPem, caCertificate: signed.caPem, expirationTimestamp: signed.notAfter };
    }),
    whoAmI: wrapUnary(deps, "WhoAmI", async (_req, call) => {
      const id = who(call);
      return { user: id.user, uid: id.uid, groups: [...id.groups], authenticationMethod: id.method };
    }),
  };
}

function toMessage(r: BootstrapTokenRecord): BootstrapToken {
  return {
    id: r.id,
    description: r.description,
    nodeNames: r.nodeNames,
    createdBy: r.createdBy,
    creationTimestamp: new Date(r.createdAt),
    expirationTimestamp: new Date(r.expiresAt),
  };
}
