/**
 * The tables of bench/fleet.ts: each load kind's two modes side by side with their stream/unary
 * ratio, the registrations, every sub-window, where the CPU went, and the suite's rows.
 */
import { type Mode, type Phase, type Registration, SERVER_METHOD, type Window } from "./fleet-meter.js";
import { fmtInt, fmtMiB, fmtMs, fmtPct, fmtRatio, fmtS, median, type SummaryRow } from "./report.js";

export type Kind = "steady" | "pushed";

export interface LoadPhase {
  kind: Kind;
  mode: Mode;
  what: string;
  leaseS: number;
  windowS: number;
  /** The (re-)registration of the fleet that ran this phase. */
  reg: Registration;
  regWhat: string;
  phase: Phase;
  /** Heartbeat streams the agents opened from their start to the window's end. */
  streamsOpened: number;
}

export interface FleetReport {
  agents: number;
  idle: Phase;
  idleWindowS: number;
  /** In the order they ran. */
  loads: LoadPhase[];
}

/** The agent sleeps (lease × 0.25, or what the server asks: the same here) × (1 + U[0, 0.04]) between renewals: 1.02 on average. */
export const offered = (agents: number, leaseS: number): number => agents / (leaseS * 0.25 * 1.02);
export const fmtRate = (n: number): string => (Number.isFinite(n) ? (n >= 100 ? fmtInt(n) : n.toFixed(1)) : "–");
const medianOf = (ws: Window[], f: (w: Window) => number | undefined): number => median(ws.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
export const maxOf = (ws: Window[], f: (w: Window) => number | undefined): number | undefined => {
  const xs = ws.map(f).filter((x): x is number => x !== undefined);
  return xs.length ? Math.max(...xs) : undefined;
};
/** The most renewals begun in one whole second over a phase's sub-windows (a sub-window shorter than 2 s may hold no whole second). */
export const peakOf = (l: { phase: Phase }): number => {
  const xs = l.phase.windows.map((w) => w.peakStartsPerSec).filter(Number.isFinite);
  return xs.length ? Math.max(...xs) : Number.NaN;
};
/** "a / b / c (median m)". */
const perWindow = (ws: Window[], f: (w: Window) => number | undefined, fmt: (n: number | undefined) => string): string =>
  `${ws.map((w) => fmt(f(w))).join(" / ")}${ws.length > 1 ? ` (median ${fmt(medianOf(ws, f))})` : ""}`;
const fmtMsU = (n: number | undefined): string => fmtMs(n ?? Number.NaN);
const fmtRateU = (n: number | undefined): string => fmtRate(n ?? Number.NaN);
const fmtTxns = (w: Window): string => `${fmtInt(w.commitsPerSec)} (${Number.isFinite(w.txnsPerCommit) ? w.txnsPerCommit.toFixed(1) : "–"})`;
const fmtSub = (windowS: number, p: Phase): string => `${p.windows.length} × ${fmtS(Number((windowS / p.windows.length).toFixed(1)))}`;

/** Server CPU per renewal above the idle server's, µs (NaN without renewals or CPU figures). */
export const serverUsPerRenewal = (w: Window, idleCpu: number): number =>
  w.serverRenewPerSec > 0 && w.serverCpu !== undefined ? ((w.serverCpu - idleCpu) / 100) * (1e6 / w.serverRenewPerSec) : Number.NaN;
/** Client (this process) CPU per renewal, µs: all its work (timers, status computation, the benchmark) divided among the renewals. */
const clientUsPerRenewal = (w: Window): number => (w.renewalsPerSec > 0 ? (w.clientCpu / 100) * (1e6 / w.renewalsPerSec) : Number.NaN);

/** Each load kind's two modes side by side, with the stream/unary ratio where it says something. */
export function mainTable(r: FleetReport): string {
  const idleCpu = r.idle.total.serverCpu ?? Number.NaN;
  const kinds = (["steady", "pushed"] as const).map((kind) => {
    const of = (mode: Mode): LoadPhase | undefined => r.loads.find((l) => l.kind === kind && l.mode === mode);
    return { title: `${kind === "steady" ? "steady state" : "pushed"}, lease ${(of("stream") ?? of("unary"))?.leaseS ?? "–"} s`, stream: of("stream"), unary: of("unary") };
  });
  const t = (l: LoadPhase): Window => l.phase.total;
  const rows: Array<{ label: string; cell: (l: LoadPhase) => string; ratio?: (l: LoadPhase) => number }> = [
    { label: "measured", cell: (l) => `${fmtS(l.windowS)} (${fmtSub(l.windowS, l.phase)})` },
    { label: "offered", cell: (l) => `~${fmtInt(offered(r.agents, l.leaseS))} renewals/s` },
    {
      label: "**renewals/s** (agents' stats)",
      cell: (l) => `**${fmtRate(t(l).renewalsPerSec)}**${t(l).inFlightAtEnd >= Math.max(10, r.agents / 100) ? ` (${fmtInt(t(l).inFlightAtEnd)} in flight at the end)` : ""}`,
      ratio: (l) => t(l).renewalsPerSec,
    },
    {
      label: "server-counted renewals OK/s",
      cell: (l) => {
        const w = t(l);
        const other: Mode = l.mode === "stream" ? "unary" : "stream";
        return `${fmtRate(w.server[l.mode].ok / w.seconds)} ${SERVER_METHOD[l.mode]}${w.server[other].ok > 0 ? ` + ${fmtRate(w.server[other].ok / w.seconds)} ${SERVER_METHOD[other]}` : ""}`;
      },
    },
    { label: "peak renewals begun in 1 s", cell: (l) => fmtInt(peakOf(l)) },
    { label: "heartbeat streams opened by the agents since their start / open on the server at the end", cell: (l) => `${fmtInt(l.streamsOpened)} / ${fmtInt(t(l).openStreams)}` },
    { label: "renewal latency seen by agents p50 / p99", cell: (l) => `${fmtMs(t(l).renewP50Ms)} / ${fmtMs(t(l).renewP99Ms)} ms` },
    { label: "server handler mean / p99", cell: (l) => `${fmtMs(t(l).handlerMeanMs)} / ≤ ${fmtMs(t(l).handlerP99Ms)} ms (${SERVER_METHOD[l.mode]})` },
    { label: "agent failures (must be 0)", cell: (l) => fmtInt(t(l).agents.failures) },
    { label: "server CPU", cell: (l) => fmtPct(t(l).serverCpu), ratio: (l) => t(l).serverCpu ?? Number.NaN },
    {
      label: "**server CPU per renewal above idle**",
      cell: (l) => (Number.isFinite(serverUsPerRenewal(t(l), idleCpu)) ? `**${fmtInt(serverUsPerRenewal(t(l), idleCpu))} µs**` : "–"),
      ratio: (l) => serverUsPerRenewal(t(l), idleCpu),
    },
    { label: "server RSS (max)", cell: (l) => fmtMiB(maxOf(l.phase.windows, (w) => w.serverRss)) },
    { label: "server event-loop delay p99 (median of sub-windows)", cell: (l) => `${fmtMs(medianOf(l.phase.windows, (w) => w.serverLoopP99Ms))} ms` },
    { label: "group commits/s (transactions each)", cell: (l) => fmtTxns(t(l)) },
    { label: "client CPU (all agents)", cell: (l) => fmtPct(t(l).clientCpu), ratio: (l) => t(l).clientCpu },
    { label: "client CPU per renewal", cell: (l) => (Number.isFinite(clientUsPerRenewal(t(l))) ? `${fmtInt(clientUsPerRenewal(t(l)))} µs` : "–"), ratio: (l) => clientUsPerRenewal(t(l)) },
    { label: "client event-loop delay p99 / max", cell: (l) => `${fmtMs(t(l).loopP99Ms)} / ${fmtMs(t(l).loopMaxMs)} ms` },
    { label: "other load (CPU of processes outside the benchmark)", cell: (l) => fmtPct(t(l).otherCpu) },
  ];
  const head = ["", ...kinds.flatMap((k) => [`${k.title}: **stream**`, "**unary**", "stream / unary"])];
  const out = [`| ${head.join(" | ")} |`, `|---|${kinds.map(() => "---:|---:|---:|").join("")}`];
  for (const row of rows) {
    const cells = kinds.flatMap((k) => [
      k.stream ? row.cell(k.stream) : "–",
      k.unary ? row.cell(k.unary) : "–",
      row.ratio && k.stream && k.unary ? fmtRatio(row.ratio(k.stream), row.ratio(k.unary)) : "",
    ]);
    out.push(`| ${row.label} | ${cells.join(" | ")} |`);
  }
  return out.join("\n");
}

export function registrationTable(r: FleetReport): string {
  const rows = [
    "| registration | agents | all registered after (p50 / p99) | **registrations/s** | server Register OK | renewals meanwhile (server) | agent failures | server CPU | server RSS | client CPU | client event-loop delay p99 / max |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const { reg, regWhat } of r.loads) {
    const w = reg.span;
    rows.push(
      `| ${regWhat} | ${fmtInt(reg.agents)} at once | ${fmtS(Number(reg.seconds.toFixed(1)))} (${reg.p50S.toFixed(1)} s / ${reg.p99S.toFixed(1)} s) | ` +
        `**${fmtInt(reg.perSec)}** | ${fmtInt(w.serverRegisterOk)} | ${fmtInt(w.serverRenewOk)} | ${fmtInt(w.agents.failures)} | ${fmtPct(w.serverCpu)} | ` +
        `${fmtMiB(w.serverRss)} | ${fmtPct(w.clientCpu)} | ${fmtMs(w.loopP99Ms)} / ${fmtMs(w.loopMaxMs)} ms |`,
    );
  }
  return rows.join("\n");
}

export function detailTable(r: FleetReport): string {
  const rows = [
    "| phase | sub-windows | renewals/s (agents) | renewals OK/s (server) | peak renewals begun in 1 s | renewals in flight at sub-window end | server CPU | client CPU | other load | renew p99 ms (agents) | server event-loop delay p99 ms | group commits/s (transactions each) | status sends | re-registrations | streams opened | server non-OK calls | client RSS |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|",
  ];
  const line = (name: string, p: Phase, windowS: number): string => {
    const ws = p.windows;
    const cells = [
      name,
      fmtSub(windowS, p),
      perWindow(ws, (w) => w.renewalsPerSec, fmtRateU),
      perWindow(ws, (w) => w.serverRenewPerSec, fmtRateU),
      ws.map((w) => fmtInt(w.peakStartsPerSec)).join(" / "),
      ws.map((w) => fmtInt(w.inFlightAtEnd)).join(" / "),
      perWindow(ws, (w) => w.serverCpu, fmtPct),
      perWindow(ws, (w) => w.clientCpu, fmtPct),
      perWindow(ws, (w) => w.otherCpu, fmtPct),
      perWindow(ws, (w) => w.renewP99Ms, fmtMsU),
      perWindow(ws, (w) => w.serverLoopP99Ms, fmtMsU),
      ws.map(fmtTxns).join(" / "),
      fmtInt(p.total.agents.statusSends),
      fmtInt(p.total.agents.registrations),
      fmtInt(p.total.streamsOpened),
      fmtInt(p.total.serverNotOk),
      fmtMiB(maxOf(ws, (w) => w.clientRss)),
    ];
    return `| ${cells.join(" | ")} |`;
  };
  rows.push(line("server idle", r.idle, r.idleWindowS));
  for (const l of r.loads) rows.push(line(l.what, l.phase, l.windowS));
  return rows.join("\n");
}

/** Where the machine's CPU went in a phase, and how the two event loops fared: who is the bottleneck. */
export function cpuSplit(l: LoadPhase, cpus: number): string {
  const t = l.phase.total;
  const idleOf = (run: number | undefined, wait: number | undefined): string => (run === undefined || wait === undefined ? "–" : fmtPct(Math.max(0, 100 - run - wait)));
  return (
    `${l.what}: server ${fmtPct(t.serverCpu)} + client ${fmtPct(t.clientCpu)} + other load ${fmtPct(t.otherCpu)} of ${cpus * 100}%. ` +
    `Server main thread: on a CPU ${fmtPct(t.serverMainRun)}, waiting for a CPU ${fmtPct(t.serverMainWait)}, neither (idle or blocked in I/O) ${idleOf(t.serverMainRun, t.serverMainWait)}; ` +
    `event loop delay p99 ${fmtMs(medianOf(l.phase.windows, (w) => w.serverLoopP99Ms))} ms; ${fmtInt(t.commitsPerSec)} group commits/s of ` +
    `${t.txnsPerCommit.toFixed(1)} transactions on average, ${fmtPct(t.commitPct)} of the time inside them. ` +
    `Client main thread: on a CPU ${fmtPct(t.clientMainRun)}, waiting ${fmtPct(t.clientMainWait)}, neither ${idleOf(t.clientMainRun, t.clientMainWait)}; ` +
    `event loop delay p99 ${fmtMs(t.loopP99Ms)} ms (medians of sub-windows).`
  );
}

/** The suite's rows: each load kind, stream beside its unary baseline. */
export function fleetSummary(r: FleetReport): SummaryRow[] {
  const idleCpu = r.idle.total.serverCpu ?? Number.NaN;
  return (["steady", "pushed"] as const).flatMap((kind) => {
    const s = r.loads.find((l) => l.kind === kind && l.mode === "stream");
    const u = r.loads.find((l) => l.kind === kind && l.mode === "unary");
    if (!s || !u) return [];
    const fig = (l: LoadPhase): string =>
      `${fmtRate(l.phase.total.renewalsPerSec)} renewals/s, p99 ${fmtMs(l.phase.total.renewP99Ms)} ms, ${fmtInt(serverUsPerRenewal(l.phase.total, idleCpu))} µs server CPU each`;
    const ratio =
      kind === "steady" ? serverUsPerRenewal(s.phase.total, idleCpu) / serverUsPerRenewal(u.phase.total, idleCpu) : s.phase.total.renewalsPerSec / u.phase.total.renewalsPerSec;
    return [
      {
        scenario: `${fmtInt(r.agents)} SDK NodeAgents, ${kind} (lease ${s.leaseS} s, ~${fmtInt(offered(r.agents, s.leaseS))} renewals/s offered), streaming heartbeat`,
        result: fig(s),
        baseline: `the same agents on unary RenewLease: ${fig(u)}: **${ratio.toFixed(2)}×** ${kind === "steady" ? "server CPU per renewal" : "renewals/s"}`,
        target: "–",
        verdict: "–" as const,
      },
    ];
  });
}
