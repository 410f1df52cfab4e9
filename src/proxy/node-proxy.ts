/**
 * nodeplane.v1.NodeProxyService: operators (and viewers) reach node agents through the server,
 * never directly (kube-apiserver's nodes/proxy, done with verified TLS). For each call:
 *
 * 1. the Node is read (NOT_FOUND for an unknown one);
 * 2. if its agent holds a reverse tunnel open, the call goes down it (via "tunnel"): an agent
 *    opens one only when it is told it cannot be dialled (--reverse-tunnel), so dialling first
 *    would only wait for a connection that cannot come;
 * 3. else the server dials the node's first address of the preferred types
 *    (--agent-preferred-address-types, default InternalIP, Hostname, ExternalIP) at
 *    status.daemon_endpoints.agent_endpoint.port, verifying the agent's certificate names the
 *    node (agent-dialer.ts). A node with no port (and no tunnel) is FAILED_PRECONDITION.
 *
 * Every call is bounded by --agent-timeout (default 10 s). ListNodeUsage asks at most 16 agents
 * at once; a node that could not be measured gets a row with its error, as `kubectl top nodes`.
 */
import { codeName, toServiceError } from "../server/errors.js";
import { FailedPreconditionError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { NodeProxyServiceServer, NodeUsage } from "../gen/nodeplane/v1/node_proxy.js";
import { checkTailLines } from "../validation/tail-lines.js";
import type { NodeRegistry } from "../registry/nodes.js";
import type { Calls } from "../server/calls.js";
import { wrapUnary } from "../server/node-service.js";
import type { AgentAnswer, AgentCall, AgentCallName } from "./agent-calls.js";
import type { AgentDialer } from "./agent-dialer.js";
import type { Tunnels } from "./tunnels.js";

const DEFAULT_AGENT_ADDRESS_TYPES: readonly string[] = ["InternalIP", "Hostname", "ExternalIP"];
const DEFAULT_AGENT_TIMEOUT_MS = 10_000;
const FAN_OUT = 16;
const PAGE = 500;

export interface NodeProxyOptions {
  registry: Pick<NodeRegistry, "getNode" | "listNodes">;
  calls: Calls;
  tunnels: Tunnels;
  /** Undefined when the server has no cluster signing CA to make its client certificate with. */
  dialer: AgentDialer | undefined;
  /** --agent-preferred-address-types. */
  addressTypes?: readonly string[];
  /** --agent-timeout. */
  timeoutMs?: number;
}

export function nodeProxyService(o: NodeProxyOptions): NodeProxyServiceServer {
  const types = o.addressTypes ?? DEFAULT_AGENT_ADDRESS_TYPES;
  const timeoutMs = o.timeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS;

  /** One call to `node`'s agent, by tunnel or dialled; `via` says which. */
  const reach = async <K extends AgentCallName>(node: Node, name: K, req: AgentCall[K]): Promise<{ answer: AgentAnswer[K]; via: string }> => {
    const nodeName = node.metadata?.name ?? "";
    const deadline = new Date(Date.now() + timeoutMs);
    if (o.tunnels.has(nodeName)) return { answer: await o.tunnels.call(nodeName, name, req, deadline), via: "tunnel" };
    const address = agentAddress(node, types);
    if (!o.dialer) {
      // Not a passing state (UNAVAILABLE would tell clients to retry): the server's configuration.
      throw new FailedPreconditionError(
        `node ${JSON.stringify(nodeName)}: the server cannot dial agents: it has no cluster signing CA to make its client certificate with (serve with --tls, or --cluster-signing-cert-file and --cluster-signing-key-file), and the node has no reverse tunnel open`,
      );
    }
    return { answer: await o.dialer.call(nodeName, address, name, req, deadline), via: address };
  };

  const usageOf = async (node: Node): Promise<NodeUsage> => {
    const base = { nodeName: node.metadata?.name ?? "", allocatable: node.status?.allocatable ?? {} };
    try {
      const { answer, via } = await reach(node, "usage", {});
      return { ...base, usage: answer.usage, via, error: "" };
    } catch (err) {
      const mapped = toServiceError(err, "-");
      return { ...base, usage: undefined, via: "", error: `${codeName(mapped.code)}: ${mapped.error.details ?? ""}` };
    }
  };

  return {
    getNodeUsage: wrapUnary(o, "GetNodeUsage", async (req) => {
      const node = await o.registry.getNode(req.name);
      const { answer, via } = await reach(node, "usage", {});
      return { usage: { nodeName: req.name, usage: answer.usage, allocatable: node.status?.allocatable ?? {}, via, error: "" } };
    }),
    listNodeUsage: wrapUnary(o, "ListNodeUsage", async (req) => {
      const nodes: Node[] = [];
      let continueToken = "";
      do {
        const page = await o.registry.listNodes({ labelSelector: req.labelSelector, fieldSelector: req.fieldSelector, limit: PAGE, continueToken });
        nodes.push(...page.nodes);
        continueToken = page.continueToken;
      } while (continueToken);
      return { items: await mapLimited(nodes, FAN_OUT, usageOf) };
    }),
    getNodeLogs: wrapUnary(o, "GetNodeLogs", async (req) => {
      checkTailLines(req.tailLines);
      const node = await o.registry.getNode(req.name);
      const { answer, via } = await reach(node, "logs", { tailLines: req.tailLines });
      return { lines: answer.lines, via };
    }),
    checkNode: wrapUnary(o, "CheckNode", async (req) => {
      const node = await o.registry.getNode(req.name);
      const { answer, via } = await reach(node, "check", {});
      return { checks: answer.checks, via };
    }),
  };
}

/**
 * host:port of `node`'s agent: its first address of the first preferred type that has one.
 * @throws FailedPreconditionError when it reports no port or no such address.
 */
function agentAddress(node: Node, types: readonly string[]): string {
  const name = JSON.stringify(node.metadata?.name ?? "");
  const port = node.status?.daemonEndpoints?.agentEndpoint?.port ?? 0;
  if (port <= 0) {
    throw new FailedPreconditionError(
      `node ${name} has no agent endpoint: status.daemon_endpoints.agent_endpoint.port is not set (its agent is older, runs without a node certificate, or has not reported yet) and it holds no reverse tunnel`,
    );
  }
  const addresses = node.status?.addresses ?? [];
  for (const type of types) {
    const a = addresses.find((x) => x.type === type && x.address);
    if (a) return `${a.address.includes(":") ? `[${a.address}]` : a.address}:${port}`;
  }
  throw new FailedPreconditionError(`node ${name} reports no address of the types ${types.join(", ")} (status.addresses; --agent-preferred-address-types) to reach its agent at`);
}

/** `fn` over `items`, at most `limit` at a time, answers in the items' order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
