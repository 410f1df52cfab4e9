/**
 * The server's node proxy, put together: the reverse-tunnel registry, the dialer (when the
 * server has a cluster signing CA to make its control-plane certificate with) and the two
 * services, NodeProxyService and AgentTunnelService, added to the gRPC server.
 */
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Security } from "../auth/setup.js";
import { AgentTunnelServiceService, NodeProxyServiceService } from "../gen/nodeplane/v1/node_proxy.js";
import type { NodeRegistry } from "../registry/nodes.js";
import type { Calls } from "../server/calls.js";
import { AgentDialer } from "./agent-dialer.js";
import { nodeProxyService } from "./node-proxy.js";
import { Tunnels } from "./tunnels.js";

export interface NodeProxySettings {
  /** --agent-preferred-address-types. */
  addressTypes?: readonly string[];
  /** --agent-timeout, ms. */
  timeoutMs?: number;
}

/** Add both services to `server`; answers the tunnels, to close on shutdown. */
export function addNodeProxy(server: Pick<grpc.Server, "addService">, o: NodeProxySettings & { registry: NodeRegistry; calls: Calls; security: Security; log: Logger }): Tunnels {
  const log = o.log.child({ component: "node-proxy" });
  const tunnels = new Tunnels({ identityOf: (md) => o.security.gate.identityOf(md), calls: o.calls, log });
  const controlPlane = o.security.controlPlane;
  const dialer = controlPlane && new AgentDialer({ credentials: () => controlPlane.get(), log });
  server.addService(NodeProxyServiceService, nodeProxyService({ registry: o.registry, calls: o.calls, tunnels, dialer, addressTypes: o.addressTypes, timeoutMs: o.timeoutMs }));
  server.addService(AgentTunnelServiceService, tunnels.service());
  return tunnels;
}
