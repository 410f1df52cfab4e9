/**
 * The results of bench/scale.ts: the table of its targets (each beside its same-run baseline),
 * the notes that say what each figure means and what else the run saw, and the suite's rows.
 */
import os from "node:os";
import { sumOf } from "./harness.js";
import { docHead, finish, fmtInt, fmtMiB, fmtMs, fmtPct, mdTable } from "./report.js";
import type { Memory, Options, RegisterRun, Timed } from "./scale.js";
import { type SteadyOutcome, steadyRow } from "./steady-heartbeat.js";

/** Issue 17 raised Register's target from issue 7's 2,000 nodes/s to 0.9 × the trivial grpc-js Register of the same run. */
const TARGET = { registerVsTrivial: 0.9, rssBytes: 2 ** 30, restartMs: 5000 };

interface Results {
  began: number;
  dataDir: string;
  profDir: string | undefined;
  failures: string[];
  baseline: RegisterRun | undefined;
  reg: RegisterRun;
  empty: Memory;
  full: Memory;
  after: Memory;
  first: Timed;
  second: Timed;
  shutdownMs: number;
  dbBytes: number;
  sampled: number;
  sampleMs: number;
  steady?: SteadyOutcome;
  steadyBaseline?: SteadyOutcome;
}

export function report(o: Options, r: Results): void {
  const { baseline, reg, second, steady } = r;
  const { failures } = r;
  const rows = resultRows(o, r);
  const revision = sumOf(r.full.samples, "nodeplane_store_revision");
  const notes = [
    `Register nodes/s per tenth of the run (first → last ${fmtInt(o.nodes / 10)} nodes): ${reg.tenths.map((x) => fmtInt(x)).join(" / ")}. Workers CPU ${fmtPct(reg.workersPct)} during registration` +
      (baseline ? `, ${fmtPct(baseline.workersPct)} against the trivial server (whose own CPU was ${fmtPct(baseline.cpu.pct.server)})` : "") +
      `. Other load (CPU of processes outside the benchmark: other jobs on this shared machine) ${fmtPct(reg.cpu.otherPct)} during registration` +
      (baseline ? `, ${fmtPct(baseline.cpu.otherPct)} during the baseline` : "") +
      `; CPU pressure (Linux PSI: share of the time some runnable task waited for a CPU) ${fmtPct(reg.cpu.pressurePct)} during registration` +
      (baseline ? `, ${fmtPct(baseline.cpu.pressurePct)} during the baseline` : "") +
      `. CPU is % of one core; the machine has ${os.cpus().length}.`,
    `Store: revision ${fmtInt(revision)} after registration; data dir ${fmtMiB(r.dbBytes)} on disk at shutdown; SIGTERM to exit took ${fmtMs(r.shutdownMs)} ms; ` +
      `while the server restarted, other load ${fmtPct(second.cpu.otherPct)} and CPU pressure ${fmtPct(second.cpu.pressurePct)}.`,
    `After the restart ${r.sampled} nodes spread over the range read back whole (GetNode, ${fmtMs(r.sampleMs)} ms).`,
    ...(steady
      ? [
          `Steady heartbeat (bench/steady-heartbeat.ts), against the restarted server: ${o.steadyWorkers} load worker processes hold one Heartbeat stream per node ` +
            `(as the SDK's NodeAgent does; gRPC over plain node:http2 sessions, at most 5,000 streams per connection${o.steadyConnections ? `, here ${o.steadyConnections} connections each` : ""}) ` +
            `and renew each node every ${o.steadyIntervalS} s at a seeded phase of its own, so the load is smooth; ` +
            `streams open at each node's first renewal (the ramp, reported apart), then at least ${o.steadyWarmupS} s of warm-up, until every node's first renewal was answered, and ${o.steadyWindowS} s measured. ` +
            "The baseline runs the same fleet first against bench/trivial-server.ts, whose Heartbeat answers each request at once (a Lease renamed to the node) and stores nothing: what grpc-js and HTTP/2 alone cost for this many streams. " +
            'Renewals/s is the server\'s own nodeplane_heartbeats_total{code="OK"} over the window; writes each is the store revision delta per renewal (a checkpoint writes up to 128 Leases in one revision); ' +
            "latency is from the worker's send to the committed answer, over every renewal sent in the window; a renewal due while the node's previous one is unanswered is skipped and counted.",
        ]
      : []),
  ].map((x) => `- ${x}`);
  const table = mdTable("| scenario | result | baseline (same run) | target | |", "|---|---|---|---|---|", rows.map((r) => [r[0]!, r[1]!, r[2]!, r[3]!, r[4]!.includes("missed") ? "**missed**" : "**met**"]));
  const checks =
    failures.length === 0
      ? "Checks passed: every Register answered OK with the node's own Lease (the server's Register counter agrees); the restarted server answered ListNodes and GetNode for a sample of nodes; both servers shut down cleanly on SIGTERM."
      : `CHECKS FAILED:\n- ${failures.join("\n- ")}`;
  const doc = [
    ...docHead("Scale benchmark: register throughput, memory, restart", "scale.js", r.began, r.dataDir),
    "- Server: `nodeplane serve` (SQLite store, WAL, synchronous=FULL, group commit), lifecycle controller on (it reads the watch cache's nodes and holds each Lease's renew time) " +
      "with grace periods longer than the run so it writes nothing; log level warn.",
    `- Load: ${o.workers} register worker processes (the SDK's NodeClient.register, one grpc-js channel each), ${o.lanes} calls in flight each, ` +
      `registering disjoint ranges of ${fmtInt(o.nodes)} nodes, each with 20 labels, 4 addresses, 6 capacity and 6 allocatable resources, 5 conditions, full node info ` +
      "and the agent endpoint (test/support/realistic-node.ts). Each Register creates the Node and its Lease in one durable transaction.",
    "",
    "What is measured: register throughput is nodes registered divided by the wall time from the first call to the last answer; " +
      `the baseline is the same workers for ${o.baselineWindowS} s against a bare grpc-js server (bench/trivial-server.ts) that decodes the request ` +
      "and answers the node and a Lease without storing anything — the ceiling of grpc-js and the codecs on this machine, with clients and server " +
      `sharing its ${os.cpus().length} CPUs. RSS is VmRSS from /proc after ${o.settleS} s idle (peak is VmHWM); V8 heap used is from the server's /metrics. ` +
      "Restart time is from spawning the new process to its `nodeplane serving` line, and to the first ListNodes (page of 500) answered, " +
      "polled every 20 ms from spawn on the same port. The server serves before its watch cache has loaded (reads and writes go to the store; " +
      "a Watch waits for the cache); ready is /readyz answering 200 (watch cache loaded, controllers synced), polled every 20 ms.",
    "",
    table,
    "",
    ...notes,
    "",
    checks,
    "",
  ].join("\n");
  process.stdout.write(`\n${table}\n\n${notes.join("\n")}\n\n${checks}\n`);
  finish({
    name: "scale",
    doc,
    out: o.out,
    profDir: r.profDir,
    profiles: ["nodeplane-fill", "nodeplane-restart"],
    rows: rows.map(([scenario, result, baseline, target, v]) => {
      return { scenario: scenario!, result: result!, baseline: baseline!, target: target!, verdict: v!.includes("missed") ? "missed" : "met" };
    }),
    failures,
  });
}


/** The rows of the table and of the suite: scenario, result, baseline, target, verdict. */
function resultRows(o: Options, r: Results): string[][] {
  const met = (ok: boolean): string => (ok ? "met" : "missed");
  const n = fmtInt(o.nodes);
  const { reg, baseline, second } = r;
  return [
    [
      `Register throughput, ${n} realistic nodes, ${o.workers} workers × ${o.lanes} in flight`,
      `${fmtInt(reg.perSec)} nodes/s (p50 ${fmtMs(reg.hist.ms(0.5))} ms, p99 ${fmtMs(reg.hist.ms(0.99))} ms; server CPU ${fmtPct(reg.cpu.pct.server)})`,
      baseline ? `trivial grpc-js Register: ${fmtInt(baseline.perSec)} calls/s (${(reg.perSec / baseline.perSec).toFixed(2)}×)` : "–",
      `≥ ${TARGET.registerVsTrivial} × the trivial Register`,
      baseline ? met(reg.perSec >= TARGET.registerVsTrivial * baseline.perSec) : "–",
    ],
    [
      `Server RSS, ${n} nodes, idle after registering them`,
      `${fmtMiB(r.full.rss)} (peak ${fmtMiB(r.full.peak)}, V8 heap used ${fmtMiB(r.full.heap)})`,
      `empty server: ${fmtMiB(r.empty.rss)} (heap ${fmtMiB(r.empty.heap)})`,
      "≤ 1 GiB",
      met((r.full.rss ?? Infinity) <= TARGET.rssBytes),
    ],
    [
      `Server RSS, ${n} nodes, idle after a restart`,
      `${fmtMiB(r.after.rss)} (peak ${fmtMiB(r.after.peak)}, V8 heap used ${fmtMiB(r.after.heap)})`,
      `empty server: ${fmtMiB(r.empty.rss)}`,
      "≤ 1 GiB",
      met((r.after.rss ?? Infinity) <= TARGET.rssBytes),
    ],
    [
      `Restart to serving, ${n} nodes in the store`,
      `${fmtMs(second.servingMs)} ms to the serving line, ${fmtMs(second.firstListMs)} ms to the first ListNodes answer (ready, /readyz 200: ${fmtMs(second.readyMs)} ms)`,
      `empty server: ${fmtMs(r.first.servingMs)} ms to the serving line`,
      "≤ 5 s",
      met(Math.max(second.servingMs, second.firstListMs) <= TARGET.restartMs),
    ],
    ...(r.steady ? [steadyRow(r.steady, r.steadyBaseline)] : []),
  ];
}

