/**
 * How the control plane reaches this agent, put together for `nodeplane agent`: the usage
 * sampler, the log ring and the checks behind one AgentApi, served
 *
 * - on the agent's endpoint (--address:--port) with its serving certificate, obtained through
 *   the node certificate (node-certificates.ts) and renewed before it expires — when the agent
 *   has a node certificate; otherwise there is no endpoint and no port is reported;
 * - and, with --reverse-tunnel, over a tunnel the agent opens to the server.
 *
 * A failure to get the serving certificate or to listen is logged and leaves the agent without
 * an endpoint (the node still registers and heartbeats): the proxy then answers
 * FAILED_PRECONDITION for it, unless it has a tunnel.
 */
import type { NodeClient } from "../client/client.js";
import { systemClock } from "../clock.js";
import type { AgentConnection } from "../auth/agent-connection.js";
import { GROUPS } from "../auth/identity.js";
import { agentApi } from "../agent/agent-api.js";
import type { AgentProgress } from "../agent/agent.js";
import type { CheckSources } from "../agent/checks.js";
import { AgentEndpoint } from "../agent/endpoint.js";
import type { LogRing } from "../agent/log-ring.js";
import { AgentTunnel } from "../agent/tunnel.js";
import { UsageSampler } from "../agent/usage.js";

export interface ReachableOptions {
  nodeName: string;
  connection: Pick<AgentConnection, "serving">;
  client: Pick<NodeClient, "openTunnel">;
  /** --address, --port (0 = any free port). */
  host: string;
  port: number;
  reverseTunnel: boolean;
  rootDir: string;
  ring: LogRing;
  progress: AgentProgress;
  timings: Pick<CheckSources, "leaseDurationMs" | "statusUpdateFrequencyMs" | "statusReportFrequencyMs" | "conditions">;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  signal: AbortSignal;
}

export interface Reachable {
  /** The endpoint's port (to report as status.daemon_endpoints.agent_endpoint.port); 0 = no endpoint. */
  port: number;
  stop(): Promise<void>;
}

export async function startReachable(o: ReachableOptions): Promise<Reachable> {
  const sampler = new UsageSampler({ rootDir: o.rootDir });
  sampler.start();
  const held: { name: string; notAfter: () => Date }[] = [];
  const api = agentApi({
    sampler,
    ring: o.ring,
    checks: { ...o.timings, progress: o.progress, clock: systemClock, certificates: () => held.map((c) => ({ name: c.name, notAfter: c.notAfter() })) },
  });

  let endpoint: AgentEndpoint | undefined;
  if (!o.connection.serving) {
    o.log.warn({ node: o.nodeName }, "agent endpoint off: it needs a node certificate (--bootstrap-token, or one in --cert-dir) to get its serving certificate with");
  } else {
    try {
      const { certs, clusterCa, client } = await o.connection.serving(o.signal);
      held.push({ name: "certificate", notAfter: () => client.notAfter }, { name: "serving-certificate", notAfter: () => certs.notAfter });
      const ep = await AgentEndpoint.listen({ host: o.host, port: o.port, tls: { ...certs.current(), ca: clusterCa }, callerGroup: GROUPS.controlPlane, api, log: o.log });
      endpoint = ep;
      certs.rotate(o.signal, () => ep.useCertificate(certs.current())).catch((err: unknown) => o.log.warn({ err: err instanceof Error ? err.message : String(err) }, "serving certificate rotation stopped"));
      o.log.info({ node: o.nodeName, address: `${o.host}:${ep.port}` }, "agent endpoint serving");
    } catch (err) {
      if (o.signal.aborted) throw err;
      o.log.warn({ node: o.nodeName, err: err instanceof Error ? err.message : String(err) }, "agent endpoint off");
    }
  }

  const tunnel = o.reverseTunnel ? new AgentTunnel({ client: o.client, nodeName: o.nodeName, api, log: o.log }) : undefined;
  tunnel?.start();
  return {
    port: endpoint?.port ?? 0,
    async stop() {
      await tunnel?.stop();
      endpoint?.close();
      sampler.stop();
    },
  };
}
