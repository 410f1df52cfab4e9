/**
 * The three calls the control plane makes to a node's agent, by name, with their request and
 * answer types — one vocabulary for both ways of reaching it: dialling its endpoint
 * (agent-dialer.ts) and its reverse tunnel (tunnels.ts).
 */
import type {
  CheckRequest,
  CheckResponse,
  GetLogsRequest,
  GetLogsResponse,
  GetResourceUsageRequest,
  GetResourceUsageResponse,
} from "../gen/nodeplane/v1/agent.js";

export interface AgentCall {
  usage: GetResourceUsageRequest;
  logs: GetLogsRequest;
  check: CheckRequest;
}

export interface AgentAnswer {
  usage: GetResourceUsageResponse;
  logs: GetLogsResponse;
  check: CheckResponse;
}

export type AgentCallName = keyof AgentCall;
