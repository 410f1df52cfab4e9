/**
 * The real server on etcd (`nodeplane serve --store etcd`), through the SDK: register, list,
 * renew, watch; then the server is killed (-9) and a new one started on the same etcd: the
 * data and revisions are etcd's, and a watch resumed from the last revision the old server
 * sent gets every later change exactly once.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeClient, type WatchEvent } from "../../src/client/client.js";
import { type EtcdCluster, startEtcd } from "../support/etcd.js";
import { spawnServer, type Spawned } from "../support/process.js";
import { agentNode, collect } from "../support/server.js";

let etcd: EtcdCluster | undefined;
const servers: Spawned[] = [];
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
  await etcd?.stop();
});

async function serveOnEtcd(prefix: string): Promise<{ server: Spawned; client: NodeClient }> {
  const server = await spawnServer([
    ...["--store", "etcd", "--etcd-endpoints", etcd!.endpoints.join(","), "--etcd-prefix", prefix],
    ...["--listen", "127.0.0.1:0", "--http-listen", "", "--log-level", "warn"],
  ]);
  servers.push(server);
  return { server, client: new NodeClient(`127.0.0.1:${server.grpcPort}`, { timeoutMs: 10_000 }) };
}

const rv = (e: { resourceVersion: string }): number => Number(e.resourceVersion);

describe("nodeplane serve --store etcd", () => {
  it("serves register, list, renew and watch; after a kill -9 and a restart, a watch resumes with no gap and no duplicate", async () => {
    const prefix = `/np-it-${randomBytes(6).toString("hex")}`;
    const first = await serveOnEtcd(prefix);
    for (const name of ["e-1", "e-2", "e-3"]) await first.client.register(agentNode(name));
    const lease = await first.client.renewLease("e-1");
    const listed = await first.client.listNodes();
    expect(listed.nodes.map((n) => n.metadata?.name).sort()).toEqual(["e-1", "e-2", "e-3"]);
    expect(Number(listed.resourceVersion)).toBeGreaterThanOrEqual(Number(lease.metadata?.resourceVersion));

    // A watch from the list sees the next change; its revision is where a client would resume.
    const watch = first.client.watch({ resourceVersion: listed.resourceVersion })[Symbol.asyncIterator]();
    const changed = await first.client.updateStatus("e-2", { capacity: { cpu: "8" } });
    const seen = (await watch.next()).value as WatchEvent;
    expect([seen.type, seen.node.metadata?.name, seen.resourceVersion]).toEqual(["MODIFIED", "e-2", changed.metadata?.resourceVersion]);

    first.server.child.kill("SIGKILL");
    expect((await first.server.exited).signal).toBe("SIGKILL");
    await expect(watch.next()).rejects.toThrow();
    first.client.close();

    const second = await serveOnEtcd(prefix);
    try {
      const again = await second.client.listNodes();
      expect(again.nodes.map((n) => [n.metadata?.name, n.metadata?.resourceVersion])).toEqual(
        listed.nodes.map((n) => [n.metadata?.name, n.metadata?.name === "e-2" ? changed.metadata?.resourceVersion : n.metadata?.resourceVersion]),
      );
      // Changes after the last revision the client saw, leases in between (revisions with no node change).
      const acked: number[] = [];
      for (let i = 0; i < 10; i++) {
        await second.client.renewLease(`e-${(i % 3) + 1}`);
        const node = i % 4 === 3 ? (await second.client.register(agentNode(`e-new-${i}`))).node : await second.client.updateStatus(`e-${(i % 3) + 1}`, { capacity: { cpu: String(i) } });
        acked.push(Number(node?.metadata?.resourceVersion));
      }
      const last = Math.max(...acked);
      const resumed = await collect(second.client.watch({ resourceVersion: seen.resourceVersion }), (events) => rv(events.at(-1)!) >= last);
      expect(resumed.map(rv)).toEqual(acked);
      expect(resumed.map((e) => e.type)).toEqual(acked.map((_, i) => (i % 4 === 3 ? "ADDED" : "MODIFIED")));
    } finally {
      second.client.close();
      second.server.child.kill("SIGTERM");
      expect((await second.server.exited).code).toBe(0);
    }
  });
});
