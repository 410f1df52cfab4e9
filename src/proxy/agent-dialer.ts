/**
 * The control plane dialing a node's agent (nodeplane.v1.AgentService) — unlike kube-apiserver's
 * default, with the agent's certificate VERIFIED:
 *
 * - the chain must end at the cluster signing CA (the only CA trusted here), and
 * - the certificate must name the node dialled: subject CN=system:node:<name> in O=system:nodes,
 *   with serverAuth usage — so another node's certificate, even one the same CA signed, is
 *   refused (the agent's serving certificate carries no host names; see csr-signer.ts);
 * - the server presents the control plane's client certificate (src/auth/control-plane.ts).
 *
 * Every call gets a fresh channel (its own subchannel pool, so the per-node identity check is never
 * shared with another node's connection) and is bounded by a deadline. Failures are answered as
 * UnavailableError naming the node and the address tried; a refused certificate is also logged
 * with the subject it presented.
 */
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { UnavailableError } from "../errors.js";
import type { AgentDialCredentials } from "../auth/control-plane.js";
import { GROUPS, NODE_USER_PREFIX } from "../auth/identity.js";
import { AgentServiceService } from "../gen/nodeplane/v1/agent.js";
import type { AgentCall, AgentCallName, AgentAnswer } from "./agent-calls.js";

const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
/** Agent answers are small (logs are capped at 2 MiB by the agent). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export interface AgentDialerOptions {
  credentials: () => Promise<AgentDialCredentials>;
  log: { warn(obj: object, msg: string): void };
}

const METHODS = {
  usage: AgentServiceService.getResourceUsage,
  logs: AgentServiceService.getLogs,
  check: AgentServiceService.check,
} as const;

export class AgentDialer {
  constructor(private readonly o: AgentDialerOptions) {}

  /**
   * Call the agent of `node` at `address` (host:port).
   * @throws UnavailableError naming the node and address: unreachable, too slow, a certificate that does not name the node, or the agent's own refusal.
   */
  async call<K extends AgentCallName>(node: string, address: string, name: K, req: AgentCall[K], deadline: Date): Promise<AgentAnswer[K]> {
    const creds = await this.o.credentials();
    let refusal: string | undefined;
    const checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
      refusal = certificateProblem(node, cert);
      return refusal === undefined ? undefined : new Error(refusal);
    };
    const client = new grpc.Client(
      address,
      grpc.credentials.createSsl(Buffer.from(creds.ca), Buffer.from(creds.key), Buffer.from(creds.cert), { checkServerIdentity }),
      {
        // The certificate is checked by its subject above, not by host name; the node name is a
        // valid SNI name, where an IP address is not.
        "grpc.ssl_target_name_override": node,
        "grpc.default_authority": node,
        "grpc.use_local_subchannel_pool": 1,
        "grpc.max_receive_message_length": MAX_ANSWER_BYTES,
      },
    );
    const method = METHODS[name];
    try {
      return await new Promise<AgentAnswer[K]>((resolve, reject) => {
        client.makeUnaryRequest(
          method.path,
          method.requestSerialize as (v: AgentCall[K]) => Buffer,
          method.responseDeserialize as (b: Buffer) => AgentAnswer[K],
          req,
          new grpc.Metadata(),
          { deadline },
          (err, res) => (err || !res ? reject(err ?? new Error("empty answer")) : resolve(res)),
        );
      });
    } catch (err) {
      const where = `node ${JSON.stringify(node)}: agent at ${address}`;
      if (refusal !== undefined) {
        this.o.log.warn({ node, address, refused: refusal }, "agent certificate refused");
        throw new UnavailableError(`${where} ${refusal}: refused`);
      }
      const e = err as Partial<grpc.ServiceError>;
      if (e.code === grpc.status.DEADLINE_EXCEEDED) throw new UnavailableError(`${where} did not answer in time (--agent-timeout)`);
      if (e.code === grpc.status.UNAVAILABLE) throw new UnavailableError(`${where} is unreachable: ${e.details ?? String(err)}`);
      throw new UnavailableError(`${where} answered ${grpc.status[e.code ?? grpc.status.UNKNOWN] ?? e.code}: ${e.details ?? String(err)}`);
    } finally {
      client.close();
    }
  }
}

/** Why `cert` is not node `node`'s serving certificate (undefined when it is). */
function certificateProblem(node: string, cert: PeerCertificate): string | undefined {
  const want = `${NODE_USER_PREFIX}${node}`;
  const cn = first(cert.subject?.CN);
  if (cn !== want) return `presented a certificate for ${JSON.stringify(cn ?? "")}, not ${want}`;
  if (!list(cert.subject?.O).includes(GROUPS.nodes)) return `presented a certificate for ${want} outside the group ${GROUPS.nodes}`;
  if (!(cert.ext_key_usage ?? []).includes(SERVER_AUTH)) return `presented a certificate for ${want} that is not a serving certificate (no serverAuth usage)`;
  return undefined;
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const first = (v: string | string[] | undefined): string | undefined => list(v)[0];
