/**
 * The real `nodeplane agent` process against a real server: registration from flags and the
 * machine, lease renewals, status sent only on change or report period, outages, deletion,
 * manual mode, reconfiguration. Waits on watch events, store events and log lines only.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NodeClient, type WatchEvent } from "../../src/client/client.js";
import type { Node } from "../../src/gen/nodeplane/v1/node.js";
import { decodeLease } from "../../src/model/codec.js";
import { leaseKey } from "../../src/model/keys.js";
import type { Store } from "../../src/store/store.js";
import { type Harness, startHarness } from "../support/server.js";
import { type SpawnedAgent, spawnAgent, spawnServer } from "../support/process.js";

let h: Harness | undefined;
const agents: SpawnedAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await h?.close();
  h = undefined;
});

const FAST = ["--node-lease-duration-seconds", "1", "--node-status-update-frequency", "100ms", "--log-level", "info"];

function agent(server: string, name: string, ...args: string[]): SpawnedAgent {
  const a = spawnAgent(["--server", server, "--hostname-override", name, ...FAST, ...args]);
  agents.push(a);
  return a;
}

/** The next watch event about `name` after `from` that satisfies `pred`. */
async function nodeEvent(client: NodeClient, name: string, pred: (e: WatchEvent) => boolean, from?: string): Promise<WatchEvent> {
  const watch = client.watch({ fieldSelector: `metadata.name=${name}`, sendInitialEvents: from === undefined, resourceVersion: from });
  for await (const ev of watch) if (ev.type !== "BOOKMARK" && pred(ev)) return ev;
  throw new Error("watch ended");
}

/** The renew times of the next `n` renewals of a node's Lease, from the store's own events. */
function leaseRenewals(store: Store, name: string, after: number, n: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const times: number[] = [];
    const w = store.watch(leaseKey(name), after, {
      onEvents: (events) => {
        for (const ev of events) if (ev.type === "put") times.push(decodeLease(ev.kv).spec!.renewTime!.getTime());
        if (times.length >= n) {
          w.cancel();
          resolve(times.slice(0, n));
        }
      },
      onProgress: () => {},
      onError: reject,
    });
  });
}

const ready = (n: Node): string | undefined => n.status?.conditions.find((c) => c.type === "Ready")?.status;

describe("nodeplane agent", () => {
  it("registers with what its flags and the machine say", async () => {
    h = await startHarness();
    const server = `127.0.0.1:${h.server.port}`;
    agent(server, "ag-facts", "--node-labels", "team=infra,tier=web", "--register-with-taints", "dedicated=gpu:NoSchedule", "--node-ip", "10.1.2.3", "--provider-id", "inventory://r1/m1");
    const { node } = await nodeEvent(h.client, "ag-facts", (e) => e.type === "ADDED");
    expect(node.metadata?.labels).toMatchObject({ team: "infra", tier: "web", "kubernetes.io/hostname": "ag-facts", "kubernetes.io/os": "linux" });
    expect(node.spec?.taints.map((t) => `${t.key}=${t.value}:${t.effect}`)).toEqual(["dedicated=gpu:NoSchedule"]);
    expect(node.spec?.providerId).toBe("inventory://r1/m1");
    expect(node.status?.addresses).toEqual([
      { type: "InternalIP", address: "10.1.2.3" },
      { type: "Hostname", address: "ag-facts" },
    ]);
    expect(node.status?.capacity).toMatchObject({ cpu: String(os.availableParallelism()), pods: "110" });
    expect(node.status?.capacity?.memory).toBe(`${Math.floor(os.totalmem() / 1024)}Ki`);
    expect(node.status?.nodeInfo?.kernelVersion).toBe(execFileSync("uname", ["-r"]).toString().trim());
    expect(node.status?.nodeInfo).toMatchObject({ operatingSystem: "linux", agentVersion: expect.stringContaining("nodeplane-agent/") });
    expect(node.status?.nodeInfo?.osImage).not.toBe("");
    expect(node.status?.conditions.map((c) => `${c.type}=${c.status}`).sort()).toEqual([
      "DiskPressure=False",
      "MemoryPressure=False",
      "PIDPressure=False",
      "Ready=True",
    ]);
  });

  it("renews its Lease every quarter of the lease duration, on the streaming heartbeat", async () => {
    // Each renewal a durable write, so that the store's watch sees every one.
    h = await startHarness({ httpListen: "127.0.0.1:0", leaseCheckpointMs: 0 });
    const from = await h.server.store.currentRevision();
    // The first write is registration's (it creates the Lease); the first renewal comes at a
    // random point of the first interval, then renewals follow every 250 ms.
    const renewals = leaseRenewals(h.server.store, "ag-lease", from, 5);
    agent(`127.0.0.1:${h.server.port}`, "ag-lease");
    const times = await renewals;
    for (let i = 3; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(240);
    const metrics = await (await fetch(`http://127.0.0.1:${h.server.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^nodeplane_heartbeats_total\{code="OK"\} [3-9]\d*$/m);
    expect(metrics).toMatch(/^nodeplane_heartbeat_streams 1$/m);
    expect(metrics).not.toMatch(/method="RenewLease"/);
  });

  it("sends an unchanged status only once per report period", async () => {
    // Each renewal a durable write, so that the store's watch counts every one.
    h = await startHarness({ leaseCheckpointMs: 0 });
    agent(`127.0.0.1:${h.server.port}`, "ag-quiet", "--node-status-report-frequency", "1s");
    const added = await nodeEvent(h.client, "ag-quiet", (e) => e.type === "ADDED");
    // Over 12 renewals (about 3 s) the status is computed about 30 times but changes never:
    // it is sent about once a second.
    await leaseRenewals(h.server.store, "ag-quiet", Number(added.resourceVersion), 12);
    const head = String(await h.server.store.currentRevision());
    let sends = 0;
    for await (const ev of h.client.watch({ resourceVersion: added.resourceVersion, fieldSelector: "metadata.name=ag-quiet" })) {
      sends++;
      if (Number(ev.resourceVersion) >= Number(head)) break;
      if (sends > 10) break;
    }
    expect(sends).toBeGreaterThanOrEqual(1);
    expect(sends).toBeLessThanOrEqual(6);
  });

  it("registers again by itself when its Node is deleted", async () => {
    h = await startHarness();
    agent(`127.0.0.1:${h.server.port}`, "ag-del");
    const first = await nodeEvent(h.client, "ag-del", (e) => e.type === "ADDED");
    const deleted = await h.client.deleteNode("ag-del");
    expect(deleted.metadata?.uid).toBe(first.node.metadata?.uid);
    const again = await nodeEvent(h.client, "ag-del", (e) => e.type === "ADDED", first.resourceVersion);
    expect(again.node.metadata?.uid).not.toBe(first.node.metadata?.uid);
  });

  it("with --register-node=false waits for an operator to create its Node, then heartbeats", async () => {
    h = await startHarness();
    const a = agent(`127.0.0.1:${h.server.port}`, "ag-manual", "--register-node=false");
    await a.logLine("waiting for an operator to create this node");
    const from = await h.server.store.currentRevision();
    const renewals = leaseRenewals(h.server.store, "ag-manual", from, 2);
    const created = await h.client.createNode({ metadata: { name: "ag-manual", labels: { rack: "r9" } } });
    await renewals;
    const lease = await h.client.getLease("ag-manual");
    expect(lease.spec?.holderIdentity).toBe("ag-manual");
    const node = await h.client.getNode("ag-manual");
    expect(node.metadata?.uid).toBe(created.metadata?.uid);
    expect(node.metadata?.labels).toEqual({ rack: "r9" });
  });

  it("reconciles changed labels on restart and keeps an operator's label and taint", async () => {
    h = await startHarness();
    const server = `127.0.0.1:${h.server.port}`;
    const first = agent(server, "ag-cfg", "--node-labels", "a=1,b=2");
    const { node } = await nodeEvent(h.client, "ag-cfg", (e) => e.type === "ADDED");
    await first.stop();
    const current = await h.client.getNode("ag-cfg");
    await h.client.updateNode({
      ...current,
      metadata: { ...current.metadata, labels: { ...current.metadata?.labels, ops: "x" } },
      spec: { ...current.spec, taints: [{ key: "ops", value: "", effect: "NoSchedule" }] },
    });
    agent(server, "ag-cfg", "--node-labels", "a=1,c=3");
    const changed = await nodeEvent(h.client, "ag-cfg", (e) => e.node.metadata?.labels?.c === "3", node.metadata?.resourceVersion);
    expect(changed.node.metadata?.labels).toMatchObject({ a: "1", c: "3", ops: "x" });
    expect(changed.node.metadata?.labels).not.toHaveProperty("b");
    expect(changed.node.spec?.taints.map((t) => t.key)).toEqual(["ops"]);
  });
});

describe("nodeplane agent through a server outage", () => {
  it("carries on without a restart after the server is killed and restarted", async () => {
    const dataDir = mkdtempSync(join(os.tmpdir(), "nodeplane-agent-outage-"));
    try {
      const args = (port: number): string[] => ["--listen", `127.0.0.1:${port}`, "--http-listen", "", "--data-dir", dataDir, "--log-level", "warn", "--controllers=-nodelifecycle"];
      const first = await spawnServer(args(0));
      const port = first.grpcPort;
      const a = agent(`127.0.0.1:${port}`, "ag-outage", "--node-status-report-frequency", "500ms");
      let client = new NodeClient(`127.0.0.1:${port}`);
      await nodeEvent(client, "ag-outage", (e) => e.type === "ADDED");
      client.close();
      first.child.kill("SIGKILL");
      await first.exited;
      await a.logLine("failed; retrying");
      const second = await spawnServer(args(port));
      client = new NodeClient(`127.0.0.1:${port}`);
      try {
        const restartedAt = Date.now();
        const ev = await nodeEvent(client, "ag-outage", (e) => {
          const hb = e.node.status?.conditions.find((c) => c.type === "Ready")?.lastHeartbeatTime?.getTime() ?? 0;
          return hb >= restartedAt;
        });
        expect(ready(ev.node)).toBe("True");
        expect(a.child.exitCode).toBeNull();
      } finally {
        client.close();
        second.child.kill("SIGTERM");
        await second.exited;
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
