/**
 * The nodeplane SDK, what `import … from "nodeplane/client"` (or "nodeplane") gives: the client,
 * the Informer, typed errors and object types (src/client/), and the node agent (src/agent/),
 * which is built on the client. Neither folder imports this file.
 */
export * from "./client/index.js";
export { NodeAgent, type AgentStats, type NodeAgentOptions } from "./agent/agent.js";
