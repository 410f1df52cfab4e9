/**
 * A small fleet on a real server whose clock is a FakeClock, built at fixed times so that
 * nodectl's output (ages, timestamps) is the same on every run.
 */
import { FakeClock } from "../../src/clock.js";
import { EventRecorder } from "../../src/registry/events.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

/** Wed, 25 Nov 2026 12:00:00 UTC: what nodectl is told "now" is. */
export const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

export interface Fleet {
  h: Harness;
  clock: FakeClock;
  server: string;
}

/**
 * cp-1: control plane, Ready, registered 2d3h5m45s before NOW, lease renewed 10 s before NOW.
 * worker-1: worker, NotReady (Ready False), registered 5m45s before NOW, a NoExecute taint, two events.
 * worker-2: created by an operator 45 s before NOW: no status, no lease, cordoned, a taint.
 */
export async function startFleet(): Promise<Fleet> {
  const clock = new FakeClock(NOW - (2 * 86_400_000 + 3 * 3_600_000 + 5 * 60_000 + 45_000));
  const h = await startHarness({ clock });
  const events = new EventRecorder({ store: h.server.store, clock, source: "node-lifecycle-controller" });

  await h.client.register(
    agentNode("cp-1", {
      metadata: { labels: { "node-role.kubernetes.io/control-plane": "", "topology.kubernetes.io/zone": "zone-a" }, annotations: { "nodeplane.io/owner": "platform-team" } },
      status: {
        addresses: [
          { type: "InternalIP", address: "10.0.0.10" },
          { type: "ExternalIP", address: "203.0.113.10" },
          { type: "Hostname", address: "cp-1" },
        ],
        nodeInfo: {
          machineId: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
          systemUuid: "4c4c4544-0042-3510-8052-b4c04f4e3232",
          bootId: "b7c3a1d2-9e8f-4a5b-8c7d-6e5f4a3b2c1d",
          kernelVersion: "6.1.0-18-amd64",
          osImage: "Debian GNU/Linux 12 (bookworm)",
          containerRuntimeVersion: "containerd://1.7.13",
          agentVersion: "nodeplane-agent/0.1.0",
          operatingSystem: "linux",
          architecture: "amd64",
        },
      },
    }),
  );

  clock.set(NOW - (5 * 60_000 + 45_000));
  await h.client.register(
    agentNode("worker-1", {
      metadata: { labels: { "node-role.kubernetes.io/worker": "", "topology.kubernetes.io/zone": "zone-b", tier: "web" } },
      spec: { podCidr: "10.244.1.0/24", podCidrs: ["10.244.1.0/24"], providerId: "inventory://rack1/m7" },
      status: {
        conditions: [
          { type: "Ready", status: "False", reason: "AgentNotReady", message: "container runtime is down" },
          { type: "MemoryPressure", status: "False", reason: "AgentHasSufficientMemory", message: "agent has sufficient memory available" },
        ],
      },
    }),
  );
  clock.advance(30_000);
  await h.client.updateNode({
    ...(await h.client.getNode("worker-1")),
    spec: { podCidr: "10.244.1.0/24", podCidrs: ["10.244.1.0/24"], providerId: "inventory://rack1/m7", taints: [{ key: "node.kubernetes.io/not-ready", effect: "NoExecute" }] },
  });
  await events.record({ nodeName: "worker-1", type: "Normal", reason: "RegisteredNode", message: "Node worker-1 event: Registered Node worker-1 in Controller" });
  clock.advance(60_000);
  await events.record({ nodeName: "worker-1", type: "Warning", reason: "NodeNotReady", message: "Node worker-1 status is now: NodeNotReady" });
  clock.advance(120_000);
  await events.record({ nodeName: "worker-1", type: "Warning", reason: "NodeNotReady", message: "Node worker-1 status is now: NodeNotReady" });

  clock.set(NOW - 45_000);
  await h.client.createNode({
    metadata: { name: "worker-2", labels: { "node-role.kubernetes.io/worker": "", tier: "storage" } },
    spec: { unschedulable: true, taints: [{ key: "dedicated", value: "storage", effect: "NoSchedule" }] },
  });

  clock.set(NOW - 10_000);
  await h.client.renewLease("cp-1", { holderIdentity: "cp-1" });
  clock.set(NOW);
  return { h, clock, server: `127.0.0.1:${h.server.port}` };
}
