/**
 * ProxyClient: an AuthClient that also speaks nodeplane.v1.NodeProxyService — node agents'
 * resource usage, recent log lines and health checks, reached through the server (which dials
 * the agent with verified TLS, or uses its reverse tunnel). Same options and typed errors:
 * NotFoundError (unknown node), FailedPreconditionError (no agent endpoint), UnavailableError
 * (the agent could not be reached, naming the node and the address tried).
 */
import type { CheckNodeResponse, GetNodeLogsResponse, NodeUsage } from "../gen/nodeplane/v1/node_proxy.js";
import { NodeProxyServiceService as P } from "../gen/nodeplane/v1/node_proxy.js";
import { AuthClient } from "./auth-client.js";
import type { CallOptions } from "./client.js";

export class ProxyClient extends AuthClient {
  /** One node's usage, with its allocatable resources. */
  async getNodeUsage(name: string, opts?: CallOptions): Promise<NodeUsage> {
    const res = await this.unary(P.getNodeUsage, { name }, opts);
    if (!res.usage) throw new Error("the server answered GetNodeUsage without a usage");
    return res.usage;
  }

  /** Every matching node's usage; a node that could not be measured has `error` set. */
  async listNodeUsage(selectors: { labelSelector?: string; fieldSelector?: string } = {}, opts?: CallOptions): Promise<NodeUsage[]> {
    return (await this.unary(P.listNodeUsage, { labelSelector: selectors.labelSelector ?? "", fieldSelector: selectors.fieldSelector ?? "" }, opts)).items;
  }

  /** The agent's last `tailLines` log lines (0 = all it keeps, at most 1000). */
  getNodeLogs(name: string, tailLines = 0, opts?: CallOptions): Promise<GetNodeLogsResponse> {
    return this.unary(P.getNodeLogs, { name, tailLines }, opts);
  }

  /** The agent's health checks. */
  checkNode(name: string, opts?: CallOptions): Promise<CheckNodeResponse> {
    return this.unary(P.checkNode, { name }, opts);
  }
}
