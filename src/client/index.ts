/** The client part of the SDK (src/sdk.ts adds the agent): NodeClient, Informer, errors, types. */
export { NodeClient } from "./client.js";
export { AuthClient, type CreateTokenOptions } from "./auth-client.js";
export { ProxyClient } from "./proxy-client.js";
export type { CheckResult, ResourceUsage } from "../gen/nodeplane/v1/agent.js";
export type { NodeUsage } from "../gen/nodeplane/v1/node_proxy.js";
export type { CallOptions, NodeClientOptions, NodeInput, PreconditionOptions, RenewOptions, WatchEvent, WatchEventType } from "./client.js";
export * from "./errors.js";
export type { Event } from "../gen/nodeplane/v1/event.js";
export type { Lease, LeaseSpec } from "../gen/nodeplane/v1/lease.js";
export type { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
export type { Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Taint } from "../gen/nodeplane/v1/node.js";
export { Informer, type InformerHandlers, type InformerOptions } from "./informer.js";
export type { BackoffOptions } from "../backoff.js";
