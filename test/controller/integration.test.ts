/**
 * The controller in the real server process with short flags: a node that stops heartbeating
 * arrives through Watch as Ready Unknown with the unreachable taints; when it heartbeats again,
 * Ready True and no taints. Waits on watch events only.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/client/client.js";
import { NodeClient } from "../../src/client/client.js";
import { agentNode } from "../support/server.js";
import { spawnServer } from "../support/process.js";

const dataDir = mkdtempSync(join(tmpdir(), "nodeplane-ctl-it-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const ready = (e: WatchEvent): string | undefined => e.node.status?.conditions.find((c) => c.type === "Ready")?.status;
const taints = (e: WatchEvent): string[] => (e.node.spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`).sort();

describe("node lifecycle controller in nodeplane serve", () => {
  it("marks a silent node Unknown with the unreachable taints, and clears them when it heartbeats again", async () => {
    const server = await spawnServer([
      "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn",
      "--node-monitor-period", "200ms", "--node-monitor-grace-period", "2s", "--node-startup-grace-period", "2s",
    ]);
    const client = new NodeClient(`127.0.0.1:${server.grpcPort}`);
    // A second node that keeps heartbeating, so one silent node is not "every zone down".
    await client.register(agentNode("keeper"));
    const keeper = setInterval(() => void client.renewLease("keeper").catch(() => undefined), 300);
    try {
      const { node } = await client.register(agentNode("silent"));
      const events = client.watch({ resourceVersion: node?.metadata?.resourceVersion, fieldSelector: "metadata.name=silent" })[Symbol.asyncIterator]();
      const until = async (pred: (e: WatchEvent) => boolean): Promise<WatchEvent> => {
        for (;;) {
          const r = await events.next();
          if (r.done) throw new Error("watch ended");
          if (pred(r.value)) return r.value;
        }
      };
      const down = await until((e) => ready(e) === "Unknown" && taints(e).length === 2);
      expect(taints(down)).toEqual(["node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unreachable:NoSchedule"]);
      expect(down.node.status?.conditions.find((c) => c.type === "Ready")?.reason).toBe("NodeStatusUnknown");

      await client.updateStatus("silent", { conditions: [{ type: "Ready", status: "True", reason: "AgentReady", lastHeartbeatTime: new Date() }] });
      const up = await until((e) => ready(e) === "True" && taints(e).length === 0);
      expect(taints(up)).toEqual([]);
      await events.return?.(undefined);

      const reasons = (await client.listEvents("silent")).map((e) => e.reason);
      expect(reasons).toEqual(expect.arrayContaining(["NodeNotReady", "TaintAdded", "TaintRemoved", "NodeReady"]));

      const metrics = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/^nodeplane_controller_taints_added_total\{taint="node.kubernetes.io\/unreachable:NoExecute"\} 1$/m);
      expect(metrics).toMatch(/^nodeplane_controller_taints_removed_total\{taint="node.kubernetes.io\/unreachable:NoExecute"\} 1$/m);
      expect(metrics).toMatch(/^nodeplane_nodes\{status="True"\} \d+$/m);
      expect(metrics).toMatch(/^nodeplane_zones\{state="(Normal|PartialDisruption)"\} 1$/m);
      expect(metrics).toMatch(/^nodeplane_controller_monitor_pass_seconds_count [1-9]\d*$/m);
    } finally {
      clearInterval(keeper);
      client.close();
      server.child.kill("SIGTERM");
      expect((await server.exited).code).toBe(0);
    }
  });
});
