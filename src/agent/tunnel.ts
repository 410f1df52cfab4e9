/**
 * The agent's side of the reverse tunnel (Konnectivity's idea, at the RPC level): for a node the
 * control plane cannot dial (NAT, a firewall, or no serving certificate to dial it with), the
 * agent opens nodeplane.v1.AgentTunnelService/Connect on its own connection to the server, says
 * hello with its node name, and answers the calls the server sends — the same AgentApi its
 * endpoint serves. The server confirms the hello with an empty message (id 0); then the agent
 * logs "reverse tunnel open". The tunnel is reopened with backoff (500 ms → 30 s) whenever it
 * ends, until stop().
 */
import * as grpc from "@grpc/grpc-js";
import { Backoff } from "../backoff.js";
import { type Clock, sleep, systemClock } from "../clock.js";
import type { NodeClient } from "../client/client.js";
import type { ConnectRequest, ConnectResponse, TunnelAnswer } from "../gen/nodeplane/v1/node_proxy.js";
import { type AgentApi, failureOf } from "./agent-api.js";
import type { AgentLogger } from "./agent.js";

export interface AgentTunnelOptions {
  client: Pick<NodeClient, "openTunnel">;
  nodeName: string;
  api: AgentApi;
  log: AgentLogger;
  clock?: Clock;
}

export class AgentTunnel {
  private readonly clock: Clock;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private stream: grpc.ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;

  constructor(private readonly o: AgentTunnelOptions) {
    this.clock = o.clock ?? systemClock;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.stream?.cancel();
    await this.running;
  }

  private async run(): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
    while (!this.stopping.signal.aborted) {
      const opened = this.clock.now();
      const end = await this.once();
      if (this.stopping.signal.aborted) return;
      this.o.log.warn({ node: this.o.nodeName, code: grpc.status[end.code] ?? end.code, details: end.details }, "reverse tunnel closed; reopening");
      await sleep(this.clock, backoff.next(end.accepted ? this.clock.now() - opened : 0), this.stopping.signal);
    }
  }

  /** One tunnel, from hello to its end. */
  private once(): Promise<{ code: grpc.status; details: string; accepted: boolean }> {
    const stream = this.o.client.openTunnel();
    this.stream = stream;
    let accepted = false;
    stream.on("data", (msg: ConnectResponse) => {
      if (msg.id === 0n && !msg.usage && !msg.logs && !msg.check) {
        if (!accepted) this.o.log.info({ node: this.o.nodeName }, "reverse tunnel open");
        accepted = true;
        return;
      }
      stream.write({ answer: this.answer(msg) });
    });
    stream.on("error", () => {}); // its status is reported below
    stream.write({ hello: { nodeName: this.o.nodeName } });
    return new Promise((resolve) => stream.on("status", (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details, accepted })));
  }

  private answer(msg: ConnectResponse): TunnelAnswer {
    const id = msg.id;
    try {
      if (msg.usage) return { id, usage: this.o.api.usage() };
      if (msg.logs) return { id, logs: this.o.api.logs(msg.logs) };
      if (msg.check) return { id, check: this.o.api.check() };
      return { id, error: { code: grpc.status.UNIMPLEMENTED, message: "the agent does not know this call (is the server newer than the agent?)" } };
    } catch (err) {
      const f = failureOf(err);
      return { id, error: { code: f.code, message: f.message } };
    }
  }
}
