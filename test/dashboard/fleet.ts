/**
 * A small fleet for the dashboard's browser tests: a real server with the HTTP side, the
 * lifecycle controller on short grace flags and the token table plugged into the dashboard's
 * hooks, and SDK NodeAgents heartbeating every 250 ms (1 s leases) spread over three zones.
 */
import type { Page } from "playwright-core";
import { NodeAgent } from "../../src/agent/agent.js";
import type { MachineStatus } from "../../src/agent/machine.js";
import { NodeClient } from "../../src/client/client.js";
import { NodeCondition, NodeSystemInfo } from "../../src/gen/nodeplane/v1/node.js";
import type { ServeOptions } from "../../src/server/server.js";
import { tokenAuth } from "../support/browser.js";
import { type Harness, startHarness } from "../support/server.js";

/** The controller's periods in these tests: an agent silent for GRACE_MS + MONITOR_MS is Unknown. */
export const MONITOR_MS = 200;
export const GRACE_MS = 1000;

export const ZONES = ["zone-a", "zone-b", "zone-c"];

export interface Fleet {
  h: Harness;
  url: string;
  agents: Map<string, NodeAgent>;
  close(): Promise<void>;
}

export function machine(i: number, name: string): () => MachineStatus {
  return () => ({
    capacity: { cpu: "8", memory: "32Gi", pods: "110" },
    allocatable: { cpu: "7500m", memory: "30Gi", pods: "110" },
    addresses: [
      { type: "InternalIP", address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}` },
      { type: "Hostname", address: name },
    ],
    nodeInfo: NodeSystemInfo.fromPartial({ kernelVersion: "6.1.0-28-amd64", osImage: "Debian GNU/Linux 12", operatingSystem: "linux", architecture: "amd64", agentVersion: "nodeplane-agent/0.1.0" }),
    conditions: [NodeCondition.fromPartial({ type: "Ready", status: "True", reason: "AgentReady", message: "agent is posting ready status" })],
  });
}

export async function startFleet(count: number, overrides: Partial<ServeOptions> = {}): Promise<Fleet> {
  const h = await startHarness({
    httpListen: "127.0.0.1:0",
    nodeLifecycle: { monitorPeriodMs: MONITOR_MS, monitorGracePeriodMs: GRACE_MS, startupGracePeriodMs: GRACE_MS },
    dashboard: { ...tokenAuth, frameMs: 100 },
    ...overrides,
  });
  const client = new NodeClient(`127.0.0.1:${h.server.port}`);
  const agents = new Map<string, NodeAgent>();
  for (let i = 0; i < count; i++) {
    const name = `node-${i + 1}`;
    const labels: Record<string, string> = {
      "kubernetes.io/hostname": name,
      "topology.kubernetes.io/region": "eu-west",
      "topology.kubernetes.io/zone": ZONES[i % ZONES.length]!,
      tier: i % 4 === 0 ? "db" : "web",
    };
    if (i < 3) labels["node-role.kubernetes.io/control-plane"] = "";
    const agent = new NodeAgent({ client, nodeName: name, probe: machine(i, name), labels, leaseDurationSeconds: 1, statusUpdateFrequencyMs: 500 });
    agent.start();
    agents.set(name, agent);
  }
  await Promise.all([...agents.values()].map((a) => a.registered));
  return {
    h,
    url: `http://127.0.0.1:${h.server.httpPort}/`,
    agents,
    async close() {
      await Promise.all([...agents.values()].map((a) => a.stop()));
      client.close();
      await h.close();
    },
  };
}

/** Log in through the page's form. */
export async function logIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.locator("#token").fill(token);
  await page.locator("#login-form button[type=submit]").click();
  await page.waitForSelector("body[data-ready=true]");
}

/** "#e5534b" → [229, 83, 75] */
export const rgb = (hex: string): number[] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
