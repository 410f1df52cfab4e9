/**
 * One node lifecycle controller pass over N nodes when nothing changes (the steady state): CPU
 * time and wall time per pass, median of several passes. Baseline in the same run: a bare loop
 * over the same informer entries doing only the probe-time bookkeeping, to show the controller's
 * own overhead beside the cost of touching 100,000 objects at all.
 *
 *   npm run build && node dist/bench/controller-pass.js [--nodes 100000] [--passes 7] [--out FILE]
 *
 * Writes bench/RESULTS-controller.md (or --out FILE; "" = nowhere); the target (< 100 ms of CPU)
 * is judged at 100,000 nodes or more.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { FakeClock } from "../src/clock.js";
import { NodeLifecycleController } from "../src/controller/nodelifecycle.js";
import { Node } from "../src/gen/nodeplane/v1/node.js";
import { Lease } from "../src/gen/nodeplane/v1/lease.js";
import { encodeLease, encodeNode } from "../src/model/codec.js";
import { leaseKey, nodeKey } from "../src/model/keys.js";
import { EventRecorder } from "../src/registry/events.js";
import { NodeRegistry } from "../src/registry/nodes.js";
import { SqliteStore } from "../src/store/sqlite.js";
import { emitSummary, verdict } from "./summary.js";
import { sharedInformers } from "../src/informer/shared.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const began = performance.now();
  const N = arg("nodes", 100_000);
  const PASSES = arg("passes", 7);
  const dir = mkdtempSync(join(tmpdir(), "nodeplane-ctlbench-"));
  const store = await SqliteStore.open({ dir });
  try {
    const clock = new FakeClock(Date.now());
    const now = new Date(clock.now());
    const zones = ["a", "b", "c"];
    for (let start = 0; start < N; start += 1000) {
      const ops = [];
      for (let i = start; i < Math.min(N, start + 1000); i++) {
        const name = `node-${String(i).padStart(6, "0")}`;
        const node = Node.fromPartial({
          metadata: {
            name,
            uid: crypto.randomUUID(),
            generation: 1n,
            creationTimestamp: now,
            labels: { "kubernetes.io/hostname": name, "topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": zones[i % 3]! },
          },
          status: {
            capacity: { cpu: "4", memory: "16Gi", pods: "110" },
            addresses: [{ type: "InternalIP", address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }],
            conditions: ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"].map((type) => ({
              type,
              status: type === "Ready" ? "True" : "False",
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            })),
          },
        });
        ops.push({ type: "put" as const, key: nodeKey(name), value: encodeNode(node) });
        const lease = Lease.fromPartial({
          metadata: { name, namespace: "kube-node-lease", uid: crypto.randomUUID(), creationTimestamp: now },
          spec: { holderIdentity: name, leaseDurationSeconds: 40, acquireTime: now, renewTime: now },
        });
        ops.push({ type: "put" as const, key: leaseKey(name), value: encodeLease(lease) });
      }
      await Promise.all(ops.map((op) => store.txn({ compare: [], ops: [op] })));
    }
    const registry = new NodeRegistry({ store, clock });
    const events = new EventRecorder({ store, clock, source: "bench" });
    const informers = sharedInformers({ store, onError: () => {} });
    const ctl = new NodeLifecycleController({ registry, nodes: informers.nodes, leases: informers.leases, events, clock });
    const loadStart = performance.now();
    informers.start();
    await ctl.start(false);
    const loadMs = performance.now() - loadStart;
    await ctl.monitor(); // first sight of every node

    const measure = async (fn: () => Promise<void>): Promise<{ cpuMs: number; wallMs: number }> => {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await fn();
      const cpu = process.cpuUsage(cpu0);
      return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0 };
    };
    const passes: { cpuMs: number; wallMs: number }[] = [];
    const baseline: { cpuMs: number; wallMs: number }[] = [];
    const probes = new Map<string, number>();
    for (let i = 0; i < PASSES; i++) {
      clock.advance(5_000);
      passes.push(await measure(() => ctl.monitor()));
      baseline.push(
        await measure(async () => {
          // The least a pass must do: visit every node and compare its heartbeat.
          for (let j = 0; j < N; j++) {
            const name = `node-${String(j).padStart(6, "0")}`;
            const seen = probes.get(name) ?? 0;
            probes.set(name, Math.max(seen, ctl.probeTime(name) ?? 0));
          }
        }),
      );
    }
    await ctl.stop();
    await informers.stop();
    const pass = { cpu: median(passes.map((p) => p.cpuMs)), wall: median(passes.map((p) => p.wallMs)) };
    const base = { cpu: median(baseline.map((p) => p.cpuMs)), wall: median(baseline.map((p) => p.wallMs)) };
    const lines = [
      "# Node lifecycle controller: one pass, nothing changing",
      "",
      `- Command: \`npm run build && node dist/bench/controller-pass.js --nodes ${N} --passes ${PASSES}\``,
      `- Date: ${new Date().toISOString()}; machine: ${cpus()[0]?.model ?? "?"} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`,
      `- ${N.toLocaleString("en")} nodes (and their Leases) in 3 zones, all Ready; informers loaded in ${loadMs.toFixed(0)} ms; medians of ${PASSES} passes.`,
      "",
      "| scenario | CPU ms per pass | wall ms per pass | target |",
      "|---|---:|---:|---|",
      `| controller monitor pass | ${pass.cpu.toFixed(1)} | ${pass.wall.toFixed(1)} | < 100 ms |`,
      `| baseline: bare loop over the same nodes | ${base.cpu.toFixed(1)} | ${base.wall.toFixed(1)} | – |`,
      "",
      `Ratio controller/baseline (CPU): ${(pass.cpu / Math.max(base.cpu, 0.001)).toFixed(1)}×`,
      "",
    ];
    process.stdout.write(lines.join("\n"));
    const outAt = process.argv.indexOf("--out");
    const out = outAt > 0 ? (process.argv[outAt + 1] ?? "") : fileURLToPath(new URL("../../bench/RESULTS-controller.md", import.meta.url));
    if (out) writeFileSync(out, lines.join("\n"));
    emitSummary({
      bench: "controller-pass.js",
      details: out ? relative(fileURLToPath(new URL("../..", import.meta.url)), out) : undefined,
      tookS: (performance.now() - began) / 1000,
      rows: [
        {
          scenario: `One node lifecycle controller pass over ${N.toLocaleString("en")} unchanged nodes (and Leases), median of ${PASSES}`,
          result: `${pass.cpu.toFixed(1)} ms CPU (${pass.wall.toFixed(1)} ms wall)`,
          baseline: `bare loop over the same nodes: ${base.cpu.toFixed(1)} ms CPU (${(pass.cpu / Math.max(base.cpu, 0.001)).toFixed(1)}×)`,
          target: "≤ 100 ms CPU at 100,000 nodes",
          verdict: N >= 100_000 ? verdict(pass.cpu <= 100) : "–",
        },
      ],
      failures: [],
    });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`controller-pass bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
