/**
 * What the agent answers the control plane (nodeplane.v1.AgentService), whichever way the call
 * came: on its own endpoint (endpoint.ts) or over its reverse tunnel (tunnel.ts). Usage, logs and
 * checks come from the sampler, the log ring and the checks; a bad request is an InvalidError.
 */
import { status } from "@grpc/grpc-js";
import { NodeplaneError } from "../errors.js";
import type { CheckResponse, GetLogsRequest, GetLogsResponse, GetResourceUsageResponse } from "../gen/nodeplane/v1/agent.js";
import { type CheckSources, runChecks } from "./checks.js";
import type { LogRing } from "./log-ring.js";
import type { UsageSampler } from "./usage.js";

export interface AgentApi {
  usage(): GetResourceUsageResponse;
  /** @throws InvalidError for a tail_lines out of range. */
  logs(req: GetLogsRequest): GetLogsResponse;
  check(): CheckResponse;
}

export function agentApi(parts: { sampler: UsageSampler; ring: LogRing; checks: CheckSources }): AgentApi {
  return {
    usage: () => ({ usage: parts.sampler.usage() }),
    logs: (req) => ({ lines: parts.ring.tail(req.tailLines) }),
    check: () => ({ checks: runChecks(parts.checks) }),
  };
}

/** How a failed call is answered: a domain error's message (a bad request); anything else without internals. */
export function failureOf(err: unknown): { code: status; message: string } {
  if (err instanceof NodeplaneError && err.kind === "Invalid") return { code: status.INVALID_ARGUMENT, message: err.message };
  return { code: status.INTERNAL, message: "internal error in the agent (its log says more)" };
}
