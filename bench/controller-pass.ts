/**
 * `node dist/bench/controller-pass.js`: one node lifecycle controller pass over N nodes when
 * nothing changes (the steady state): CPU time and wall time per pass, median of several passes.
 * Baseline in the same run: a bare loop over the same nodes doing only the probe-time
 * bookkeeping, to show the controller's own overhead beside the cost of touching 100,000 objects
 * at all. Writes bench/RESULTS-controller.md; the target (≤ 100 ms of CPU) is judged at 100,000
 * nodes or more. Flags (or env CONTROLLER_<NAME>): --help.
 */
import { FakeClock } from "../src/clock.js";
import { NodeLifecycleController } from "../src/controller/nodelifecycle.js";
import { Lease } from "../src/gen/nodeplane/v1/lease.js";
import { Node } from "../src/gen/nodeplane/v1/node.js";
import { encodeLease, encodeNode } from "../src/model/codec.js";
import { leaseKey, nodeKey } from "../src/model/keys.js";
import { EventRecorder } from "../src/registry/events.js";
import { NodeRegistry } from "../src/registry/nodes.js";
import { SqliteStore } from "../src/store/sqlite.js";
import { sharedInformers } from "../src/informer/shared.js";
import { Flags } from "./flags.js";
import { runMain, tempDir } from "./harness.js";
import { docHead, finish, median } from "./report.js";

const nodeName = (i: number): string => `node-${String(i).padStart(6, "0")}`;

/** N Ready nodes in 3 zones and their Leases, written straight into the store. */
async function fill(store: SqliteStore, n: number, now: Date): Promise<void> {
  for (let start = 0; start < n; start += 1000) {
    const ops = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const name = nodeName(i);
      const node = Node.fromPartial({
        metadata: {
          name,
          uid: crypto.randomUUID(),
          generation: 1n,
          creationTimestamp: now,
          labels: { "kubernetes.io/hostname": name, "topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": ["a", "b", "c"][i % 3]! },
        },
        status: {
          capacity: { cpu: "4", memory: "16Gi", pods: "110" },
          addresses: [{ type: "InternalIP", address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }],
          conditions: ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"].map((type) => {
            return { type, status: type === "Ready" ? "True" : "False", lastHeartbeatTime: now, lastTransitionTime: now };
          }),
        },
      });
      const lease = Lease.fromPartial({
        metadata: { name, namespace: "kube-node-lease", uid: crypto.randomUUID(), creationTimestamp: now },
        spec: { holderIdentity: name, leaseDurationSeconds: 40, acquireTime: now, renewTime: now },
      });
      ops.push({ type: "put" as const, key: nodeKey(name), value: encodeNode(node) }, { type: "put" as const, key: leaseKey(name), value: encodeLease(lease) });
    }
    await Promise.all(ops.map((op) => store.txn({ compare: [], ops: [op] })));
  }
}

/** CPU and wall time of `fn`, ms. */
async function timed(fn: () => Promise<void> | void): Promise<{ cpuMs: number; wallMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const cpu = process.cpuUsage(cpu0);
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0 };
}

async function main(): Promise<void> {
  const f = new Flags("controller-pass.js", "CONTROLLER");
  const n = f.num("nodes", 100_000, 1, 1_000_000, "nodes (and Leases) in the store");
  const passes = f.num("passes", 7, 1, 100, "passes measured; medians are reported");
  const out = f.out("controller");
  f.done();
  const began = Date.now();
  const dir = tempDir("nodeplane-ctlbench-");
  const store = await SqliteStore.open({ dir });
  try {
    const clock = new FakeClock(Date.now());
    await fill(store, n, new Date(clock.now()));
    const registry = new NodeRegistry({ store, clock });
    const events = new EventRecorder({ store, clock, source: "bench" });
    const informers = sharedInformers({ store, onError: () => {} });
    const ctl = new NodeLifecycleController({ registry, nodes: informers.nodes, leases: informers.leases, events, clock });
    const load = await timed(async () => {
      informers.start();
      await ctl.start(false);
    });
    await ctl.monitor(); // first sight of every node

    const pass: Array<{ cpuMs: number; wallMs: number }> = [];
    const bare: Array<{ cpuMs: number; wallMs: number }> = [];
    const probes = new Map<string, number>();
    for (let i = 0; i < passes; i++) {
      clock.advance(5_000);
      pass.push(await timed(() => ctl.monitor()));
      // The least a pass must do: visit every node and compare its heartbeat.
      bare.push(await timed(() => {
        for (let j = 0; j < n; j++) {
          const name = nodeName(j);
          probes.set(name, Math.max(probes.get(name) ?? 0, ctl.probeTime(name) ?? 0));
        }
      }));
    }
    await ctl.stop();
    await informers.stop();
    const cpu = median(pass.map((p) => p.cpuMs));
    const wall = median(pass.map((p) => p.wallMs));
    const baseCpu = median(bare.map((p) => p.cpuMs));
    const ratio = (cpu / Math.max(baseCpu, 0.001)).toFixed(1);
    const lines = [
      ...docHead("Node lifecycle controller: one pass, nothing changing", "controller-pass.js", began, dir),
      `- ${n.toLocaleString("en")} nodes (and their Leases) in 3 zones, all Ready; informers loaded in ${load.wallMs.toFixed(0)} ms; medians of ${passes} passes.`,
      "",
      "| scenario | CPU ms per pass | wall ms per pass | target |",
      "|---|---:|---:|---|",
      `| controller monitor pass | ${cpu.toFixed(1)} | ${wall.toFixed(1)} | < 100 ms |`,
      `| baseline: bare loop over the same nodes | ${baseCpu.toFixed(1)} | ${median(bare.map((p) => p.wallMs)).toFixed(1)} | – |`,
      "",
      `Ratio controller/baseline (CPU): ${ratio}×`,
      "",
    ];
    process.stdout.write(lines.join("\n"));
    finish({
      name: "controller-pass",
      doc: lines.join("\n"),
      out,
      rows: [
        {
          scenario: `One node lifecycle controller pass over ${n.toLocaleString("en")} unchanged nodes (and Leases), median of ${passes}`,
          result: `${cpu.toFixed(1)} ms CPU (${wall.toFixed(1)} ms wall)`,
          baseline: `bare loop over the same nodes: ${baseCpu.toFixed(1)} ms CPU (${ratio}×)`,
          target: "≤ 100 ms CPU at 100,000 nodes",
          verdict: n >= 100_000 ? (cpu <= 100 ? "met" : "missed") : "–",
        },
      ],
      failures: [],
    });
  } finally {
    await store.close();
  }
}

runMain("controller-pass", main);
