/**
 * The steady heartbeat of a large fleet (part of bench/scale.ts): every node holds its own
 * Heartbeat stream (as the SDK's NodeAgent does) and renews its Lease every `intervalS` at a
 * phase of its own — 100,000 nodes at 10 s is 10,000 durable renewals/s — for a measured window
 * after one interval of ramp (streams open at each node's first renewal) and a warm-up: at least
 * `warmupS` (one more interval by default), then until every node's first renewal was answered
 * (at most RAMP_LIMIT_INTERVALS from the start), so the window measures the steady fleet, not the
 * tail of the ramp's backlog. The ramp (every stream opening within one interval, as after a
 * server restart) is reported apart: the time from the start until the last first answer.
 * Load comes from worker processes (bench/steady-worker.ts); the nodes must be registered.
 *
 * Reported: renewals/s committed (the server's own nodeplane_heartbeats_total{code="OK"} over the
 * window, and the store revisions it advanced: 1.00 per renewal = one durable write each),
 * latency from the agent's send to the committed answer (over every renewal sent in the window),
 * server CPU and RSS with every stream open, the workers' CPU, other load and CPU pressure; and
 * failures: renewals due in the window skipped (the previous one was unanswered), unanswered after
 * the window, stream errors, a window that opened before every node's first renewal was answered.
 */
import { benchScript, epochNow, scrapeMetrics, sleep, sumOf } from "./harness.js";
import { stopAll, workers as spawnWorkers } from "./ipc.js";
import { cpuWindow, type Pids } from "./proc.js";
import { fmtInt, fmtMiB, fmtMs, fmtPct } from "./report.js";
import type { SteadyApi, SteadyNote } from "./steady-worker.js";
import { Errors, Histogram } from "./tally.js";

/** Streams per HTTP/2 connection when the connections are not given (nodeplane allows 10,000 by default). */
const STREAMS_PER_CONNECTION = 5000;

/** The warm-up waits for the ramp to drain until this many intervals after the start, then the window opens anyway (and fails). */
const RAMP_LIMIT_INTERVALS = 6;
/** How far ahead of its start the window is announced to the workers. */
const ANNOUNCE_MS = 2000;

/** Issue 7: 100,000 nodes at 10 s sustained with p99 ≤ 100 ms and under one core. */
const TARGET = { p99Ms: 100, serverCpuPct: 100 };

export interface SteadyOptions {
  /** The server's gRPC port, its /metrics port (none: a baseline without nodeplane's counters), its pid. */
  port: number;
  httpPort: number | undefined;
  serverPid: number | undefined;
  /** Nodes scaleNodeName(0 … nodes-1), registered. */
  nodes: number;
  intervalS: number;
  windowS: number;
  /** Seconds after the ramp interval before the window may open (it waits for the ramp to drain too). */
  warmupS: number;
  workers: number;
  /** HTTP/2 connections per worker; undefined: enough for at most 5,000 streams each. */
  connections: number | undefined;
  log: (line: string) => void;
}

export interface SteadyOutcome {
  o: SteadyOptions;
  /** The server's OK heartbeats/s over the window, and store revisions per OK heartbeat. */
  committedPerSec: number;
  writesPerRenewal: number;
  hist: Histogram;
  /** Ms from the ramp interval's end until the window opened. */
  warmupMs: number;
  serverCpuPct: number | undefined;
  /** The same server just before, with no renewals. */
  idleServerCpuPct: number | undefined;
  workersCpuPct: number | undefined;
  /** The workers' worst event-loop delay over the window, ms (the generator's share of the latencies). */
  workersLagMs: { p99: number; max: number };
  otherPct: number | undefined;
  pressurePct: number | undefined;
  serverRss: number | undefined;
  streamsOpen: number;
  /** Renewals due in the window skipped (the previous one was unanswered). */
  skipped: number;
  ramp: Ramp;
  /** Empty when every check held. */
  failures: string[];
}

/** The ramp: every stream opening (at its node's first renewal) within the first interval. */
export interface Ramp {
  /** Ms from the start until the last stream opened, and until the last node's first answer (undefined: some never had one). */
  openMs: number;
  answeredMs: number | undefined;
  /** Nodes with their first answer when the window opened. */
  answeredAtWindow: number;
  /** Renewals skipped before the window (due while the previous one was unanswered). */
  skipped: number;
}

/** The server's heartbeat counters and store revision, scraped at epoch ms `at` (NaN without /metrics). */
function countersAt(httpPort: number | undefined, at: number): Promise<{ ok: number; all: number; revision: number }> {
  return sleep(at - epochNow()).then(async () => {
    if (httpPort === undefined) return { ok: Number.NaN, all: Number.NaN, revision: Number.NaN };
    const s = await scrapeMetrics(httpPort);
    return { ok: sumOf(s, "nodeplane_heartbeats_total", { code: "OK" }), all: sumOf(s, "nodeplane_heartbeats_total"), revision: sumOf(s, "nodeplane_store_revision") };
  });
}

export async function runSteadyHeartbeat(o: SteadyOptions): Promise<SteadyOutcome> {
  const ws = spawnWorkers<SteadyApi, SteadyNote>(o.workers, "steady-worker", benchScript("steady-worker.js"));
  try {
    const intervalMs = o.intervalS * 1000;
    // Workers start, encode their requests and connect before startAt.
    const startAt = epochNow() + 3000;
    const rampLimitAt = startAt + Math.max(RAMP_LIMIT_INTERVALS * intervalMs, intervalMs + o.warmupS * 1000);
    const drained = new Set<number>();
    const allDrained = new Promise<void>((resolve) =>
      ws.forEach((w, i) =>
        w.onNote(() => {
          drained.add(i);
          if (drained.size === ws.length) resolve();
        }),
      ),
    );
    const per = Math.ceil(o.nodes / o.workers);
    const connections = o.connections ?? Math.max(1, Math.ceil(per / STREAMS_PER_CONNECTION));
    o.log(
      `steady: ${fmtInt(o.nodes)} nodes, one Heartbeat stream each, every ${o.intervalS} s (${fmtInt(o.nodes / o.intervalS)} renewals/s offered); ` +
        `${o.workers} workers × ${fmtInt(connections)} HTTP/2 connections; ramp ${o.intervalS} s + warm-up ≥ ${o.warmupS} s (until every node's first renewal ` +
        `is answered, at most ${fmtInt((rampLimitAt - startAt) / 1000 - o.intervalS)} s), then ${o.windowS} s measured`,
    );
    const results = Promise.all(
      ws.map((w, i) =>
        w.call("run", rampLimitAt + ANNOUNCE_MS + o.windowS * 1000 - epochNow() + 2 * intervalMs + 60_000, {
          index: i,
          address: `127.0.0.1:${o.port}`,
          first: i * per,
          count: Math.max(0, Math.min(per, o.nodes - i * per)),
          connections,
          intervalMs,
          startAt,
          // A server that is behind answers late, not never: wait up to two intervals for the last answers.
          drainMs: 2 * intervalMs + 5000,
        }),
      ),
    );
    results.catch(() => undefined); // awaited below; a failure before then must not go unhandled
    // The same server with no agents (the workers start and connect meanwhile, sending nothing).
    const idle = await cpuWindow({ server: o.serverPid }, epochNow() + 500, startAt - 200);
    // The warm-up: at least warmupS after the ramp interval, then until the ramp has drained (bounded).
    await sleep(startAt + intervalMs + o.warmupS * 1000 - ANNOUNCE_MS - epochNow());
    let limit: NodeJS.Timeout | undefined;
    await Promise.race([allDrained, new Promise<void>((resolve) => (limit = setTimeout(resolve, rampLimitAt - epochNow())))]);
    clearTimeout(limit);
    const windowStartAt = epochNow() + ANNOUNCE_MS;
    const windowEndAt = windowStartAt + o.windowS * 1000;
    await Promise.all(ws.map((w) => w.call("window", ANNOUNCE_MS, { startAt: windowStartAt, endAt: windowEndAt })));
    const pids: Pids = { server: o.serverPid };
    ws.forEach((w, i) => (pids[`worker${i}`] = w.pid));
    const cpu = cpuWindow(pids, windowStartAt, windowEndAt);
    const [before, after] = await Promise.all([countersAt(o.httpPort, windowStartAt), countersAt(o.httpPort, windowEndAt)]);
    const w = await cpu;
    const rs = await results;
    const hist = Histogram.of(rs.map((r) => r.hist));
    const errors = Errors.of(rs.map((r) => r.errors));
    const sum = (f: (r: (typeof rs)[number]) => number): number => rs.reduce((a, r) => a + f(r), 0);
    const unanswered = sum((r) => r.unanswered);
    // Without the server's counters (a baseline): the renewals sent in the window and answered.
    const ok = o.httpPort === undefined ? hist.count : after.ok - before.ok;
    const serverNotOk = o.httpPort === undefined ? 0 : after.all - after.ok - (before.all - before.ok);
    const workerPct = ws.map((_, i) => w.pct[`worker${i}`]);
    const out: SteadyOutcome = {
      o,
      committedPerSec: ok / (w.elapsedMs / 1000),
      writesPerRenewal: ok > 0 ? (after.revision - before.revision) / ok : Number.NaN,
      hist,
      warmupMs: windowStartAt - startAt - intervalMs,
      serverCpuPct: w.pct.server,
      idleServerCpuPct: idle.pct.server,
      workersLagMs: { p99: Math.max(...rs.map((r) => r.lagMs.p99)), max: Math.max(...rs.map((r) => r.lagMs.max)) },
      workersCpuPct: workerPct.some((x) => x === undefined) ? undefined : workerPct.reduce((a, x) => a! + x!, 0),
      otherPct: w.otherPct,
      pressurePct: w.pressurePct,
      serverRss: w.rss.server,
      streamsOpen: sum((r) => r.streamsOpen),
      skipped: sum((r) => r.skipped),
      ramp: {
        openMs: Math.max(...rs.map((r) => r.ramp.lastOpenAt)) - startAt,
        answeredMs: rs.some((r) => r.ramp.lastFirstAnswerAt === 0) ? undefined : Math.max(...rs.map((r) => r.ramp.lastFirstAnswerAt)) - startAt,
        answeredAtWindow: sum((r) => r.ramp.firstAnswersAtWindow),
        skipped: sum((r) => r.ramp.skipped),
      },
      failures: [],
    };
    if (errors.total > 0) out.failures.push(`stream errors ${JSON.stringify(errors.counts)}: ${errors.samples.join("; ")}`);
    if (serverNotOk > 0) out.failures.push(`the server counted ${serverNotOk} failed heartbeats in the window`);
    if (unanswered > 0) out.failures.push(`${unanswered} renewals sent in the window were never answered`);
    // Otherwise the window measures the ramp's backlog, not the steady fleet: a longer warm-up is needed.
    if (out.ramp.answeredAtWindow < o.nodes) {
      out.failures.push(`the window opened before the ramp had drained: ${out.ramp.answeredAtWindow} of ${o.nodes} nodes had their first renewal answered`);
    }
    if (out.streamsOpen < o.nodes) out.failures.push(`only ${out.streamsOpen} of ${o.nodes} streams were open at the end of the window`);
    // Renewals are durable by checkpoint: at most one store write each, usually far fewer.
    if (o.httpPort !== undefined && out.writesPerRenewal > 1.01) out.failures.push(`${out.writesPerRenewal.toFixed(2)} store writes per renewal (want at most 1)`);
    o.log(`steady: ramp: ${rampText(out.ramp)}; the window opened ${fmtMs(out.warmupMs)} ms after the ramp interval`);
    o.log(
      `steady: ${fmtInt(out.committedPerSec)} renewals/s committed (offered ${fmtInt(o.nodes / o.intervalS)}), p50 ${fmtMs(hist.ms(0.5))} / p99 ${fmtMs(hist.ms(0.99))} / max ${fmtMs(hist.maxUs / 1000)} ms, ` +
        `server CPU ${fmtPct(out.serverCpuPct)}, RSS ${fmtMiB(out.serverRss)}, ` +
        `workers ${fmtPct(out.workersCpuPct)} (event-loop delay p99 ${fmtMs(out.workersLagMs.p99)} / max ${fmtMs(out.workersLagMs.max)} ms), other ${fmtPct(out.otherPct)}, ` +
        `skipped ${out.skipped}, streams ${fmtInt(out.streamsOpen)}`,
    );
    return out;
  } finally {
    await stopAll(ws);
  }
}

const rampText = (r: Ramp): string =>
  `every stream open after ${fmtMs(r.openMs)} ms, every node's first renewal answered after ${r.answeredMs === undefined ? "(never: some were not)" : `${fmtMs(r.answeredMs)} ms`}, ` +
  `${r.skipped} renewals skipped meanwhile`;

/** The result table's row cells: scenario, result, baseline, target, verdict. */
export function steadyRow(s: SteadyOutcome, baseline?: SteadyOutcome): string[] {
  const p99 = s.hist.ms(0.99);
  const met = s.failures.length === 0 && p99 <= TARGET.p99Ms && (s.serverCpuPct ?? Infinity) < TARGET.serverCpuPct && s.skipped === 0;
  return [
    `Steady heartbeat: ${fmtInt(s.o.nodes)} nodes, one stream each, every ${s.o.intervalS} s, ${s.o.windowS} s measured after ${s.o.intervalS} s of ramp and ${fmtMs(s.warmupMs / 1000)} s of warm-up`,
    `${fmtInt(s.committedPerSec)} renewals/s answered (offered ${fmtInt(s.o.nodes / s.o.intervalS)}; ${s.writesPerRenewal.toFixed(3)} store writes each), ` +
      `p50 ${fmtMs(s.hist.ms(0.5))} / p99 ${fmtMs(p99)} ms, server CPU ${fmtPct(s.serverCpuPct)}, RSS ${fmtMiB(s.serverRss)} with ${fmtInt(s.streamsOpen)} streams open; ` +
      `${s.skipped} renewals skipped (previous unanswered); load workers ${fmtPct(s.workersCpuPct)} (event-loop delay p99 ${fmtMs(s.workersLagMs.p99)} ms), other load ${fmtPct(s.otherPct)}, CPU pressure ${fmtPct(s.pressurePct)}; ` +
      `the ramp (not measured above): ${rampText(s.ramp)}`,
    (baseline
      ? `the same fleet against a trivial grpc-js Heartbeat (answers at once, stores nothing): ${fmtInt(baseline.committedPerSec)} renewals/s, ` +
        `p50 ${fmtMs(baseline.hist.ms(0.5))} / p99 ${fmtMs(baseline.hist.ms(0.99))} ms, CPU ${fmtPct(baseline.serverCpuPct)}, RSS ${fmtMiB(baseline.serverRss)}, ${baseline.skipped} skipped; ramp: ${rampText(baseline.ramp)}; `
      : "") + `nodeplane idle just before: CPU ${fmtPct(s.idleServerCpuPct)}`,
    `p99 ≤ ${TARGET.p99Ms} ms, < 1 core`,
    met ? "met" : "**missed**",
  ];
}
