/**
 * `node dist/bench/fleet.js` (the suite's --fleet): --agents in-process NodeAgents (the SDK's node
 * agent) heartbeating against one real nodeplane server, sharing a few NodeClient channels, with a
 * fixed probe (the status never changes). Every load phase runs in the agent's two modes side by
 * side: "stream" (one Heartbeat stream per agent, the default) and "unary" (a RenewLease call per
 * renewal, the baseline), both counted and timed on the client and cross-checked against the
 * server's counters (bench/fleet-meter.ts). The phases are main()'s: idle; the steady state
 * (lease --lease) in each mode; pushed (lease --hard-lease) in each mode, in the other order.
 * Tables and what each figure means: bench/fleet-report.ts, bench/RESULTS-fleet.md. Flags (or env
 * FLEET_<NAME>): --help.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type AgentLogger, NodeAgent } from "../src/agent/agent.js";
import type { MachineStatus } from "../src/agent/machine.js";
import type { NodeCondition } from "../src/gen/nodeplane/v1/node.js";
import { Flags } from "./flags.js";
import { bounded, Meter, type Mode, registerFleet, SERVER_METHOD, TimedClient, totals, type Window } from "./fleet-meter.js";
import * as table from "./fleet-report.js";
import { exitAfter, NODEPLANE_BIN, ROOT, runMain, sleep, spawnNodeplane, stopChecked, sumOf, tempDir } from "./harness.js";
import { fsTypeOf } from "./proc.js";
import { docHead, finish, fmtInt, fmtMiB, fmtMs, fmtPct, fmtS } from "./report.js";

const STOP_TIMEOUT_MS = 20_000;
const log = (s: string): void => void process.stderr.write(`${s}\n`);

function options() {
  const f = new Flags("fleet.js", "FLEET");
  const q = f.quick;
  const o = {
    quick: q,
    agents: f.num("agents", q ? 2_000 : 10_000, 1, 50_000, "agents in the fleet"),
    channels: f.num("channels", 8, 1, 64, "NodeClient channels shared round-robin"),
    idleWindowS: f.num("idle-window", q ? 4 : 20, 1, 300, "idle measured seconds", false),
    leaseS: f.num("lease", 40, 1, 3600, "steady-state lease duration, s"),
    windowS: f.num("window", q ? 8 : 30, 1, 300, "steady-state measured seconds, per mode", false),
    warmupS: f.num("warmup", q ? 1 : 3, 0, 120, "seconds after every agent has renewed once before the steady window", false),
    hardLeaseS: f.num("hard-lease", 4, 1, 3600, "pushed-phase lease duration, s"),
    hardWindowS: f.num("hard-window", q ? 5 : 15, 1, 300, "pushed-phase measured seconds, per mode", false),
    hardWarmupS: f.num("hard-warmup", q ? 1 : 3, 0, 120, "the same before the pushed window", false),
    windows: f.num("windows", 3, 1, 20, "sub-windows per measured window, listed with medians"),
    registerTimeoutS: f.num("register-timeout", q ? 30 : 60, 1, 600, "bound on each (re-)registration, s", false),
    deadlineS: f.num("deadline", q ? 150 : 420, 10, 3600, "bound on the whole run, s", false),
    out: f.out("fleet"),
  };
  f.done();
  return o;
}

type Options = ReturnType<typeof options>;

// ---------------------------------------------------------------------------------------
// The fleet: agents and their machines

const fleetNodeName = (i: number): string => `fleet-node-${String(i).padStart(5, "0")}`;
const hex = (s: string): string => createHash("sha256").update(s).digest("hex");
const uuid = (h: string): string => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;

/** A fixed, realistic machine for agent `i`: what probeMachine would read on a 32-core, 128 GiB node. */
function fixedProbe(i: number, name: string): () => MachineStatus {
  const capacity = { cpu: "32", memory: "131825740Ki", pods: "110", "ephemeral-storage": "488245288Ki" };
  const allocatable = { cpu: "32", memory: "131723340Ki", pods: "110", "ephemeral-storage": "439420759Ki" };
  const addresses = [
    { type: "InternalIP", address: `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` },
    { type: "Hostname", address: name },
  ];
  const nodeInfo = {
    machineId: hex(`machine ${name}`).slice(0, 32),
    systemUuid: uuid(hex(`uuid ${name}`)),
    bootId: uuid(hex(`boot ${name}`)),
    kernelVersion: "6.1.0-18-amd64",
    osImage: "Debian GNU/Linux 12 (bookworm)",
    containerRuntimeVersion: "containerd://1.7.13",
    agentVersion: "0.1.0",
    operatingSystem: "linux",
    architecture: "amd64",
  };
  const condition = (type: string, status: string, reason: string, message: string): NodeCondition => {
    return { type, status, reason, message, lastHeartbeatTime: undefined, lastTransitionTime: undefined };
  };
  // Fresh conditions each call: the agent stamps heartbeat times into them.
  return () => ({
    capacity,
    allocatable,
    addresses,
    nodeInfo,
    conditions: [
      condition("MemoryPressure", "False", "AgentHasSufficientMemory", "agent has sufficient memory available"),
      condition("DiskPressure", "False", "AgentHasNoDiskPressure", "agent has no disk pressure"),
      condition("PIDPressure", "False", "AgentHasSufficientPID", "agent has sufficient PID available"),
      condition("Ready", "True", "AgentReady", "agent is posting ready status"),
    ],
  });
}

/** What the agents logged at warn level, by message (node names folded), bounded. */
const warnings = new Map<string, number>();
const fleetLog: AgentLogger = {
  info: () => {},
  warn: (obj, msg) => {
    const err = (obj as { err?: unknown }).err;
    const key = `${msg}${err === undefined ? "" : `: ${String(err)}`}`.replace(/fleet-node-\d+/g, "fleet-node-N");
    const k = warnings.has(key) || warnings.size < 40 ? key : "(other warnings)";
    warnings.set(k, (warnings.get(k) ?? 0) + 1);
  },
};

function makeFleet(o: Options, clients: TimedClient[], leaseS: number, mode: Mode): NodeAgent[] {
  return Array.from({ length: o.agents }, (_, i) => {
    const name = fleetNodeName(i);
    return new NodeAgent({
      client: clients[i % clients.length]!,
      nodeName: name,
      probe: fixedProbe(i, name),
      labels: {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/region": "region-1",
        "topology.kubernetes.io/zone": ["zone-a", "zone-b", "zone-c"][i % 3]!,
        "nodeplane.io/bench": "fleet",
      },
      leaseDurationSeconds: leaseS,
      heartbeat: mode,
      log: fleetLog,
    });
  });
}

const fmtWindow = (w: Window): string =>
  `${table.fmtRate(w.renewalsPerSec).padStart(6)} renewals/s (server: Heartbeat ${table.fmtRate(w.server.stream.ok / w.seconds)}, RenewLease ${table.fmtRate(w.server.unary.ok / w.seconds)}; ` +
  `peak 1 s ${fmtInt(w.peakStartsPerSec)}, in flight ${w.inFlightAtEnd}, streams ${fmtInt(w.openStreams)})  ` +
  `p50/p99 ${fmtMs(w.renewP50Ms)}/${fmtMs(w.renewP99Ms)} ms (handler ${fmtMs(w.handlerMeanMs)}/≤${fmtMs(w.handlerP99Ms)} ms)  failures ${w.agents.failures}  ` +
  `commits ${fmtInt(w.commitsPerSec)}/s ×${w.txnsPerCommit.toFixed(1)} (${fmtPct(w.commitPct)})  server CPU ${fmtPct(w.serverCpu)}  client CPU ${fmtPct(w.clientCpu)}  other ${fmtPct(w.otherCpu)}  ` +
  `loop p99 server ${fmtMs(w.serverLoopP99Ms)} ms, client ${fmtMs(w.loopP99Ms)} ms  server RSS ${fmtMiB(w.serverRss)}`;

/** The fleet over the run: (re)started once per load phase, each phase measured and checked. */
class Fleet {
  agents: NodeAgent[] = [];
  readonly loads: table.LoadPhase[] = [];
  readonly problems: string[] = [];

  constructor(
    private readonly o: Options,
    private readonly clients: TimedClient[],
    private readonly meter: Meter,
    /** Races a promise against the server's death. */
    private readonly guard: <T>(p: Promise<T>) => Promise<T>,
  ) {}

  async stop(): Promise<number> {
    const t = performance.now();
    await this.guard(bounded(Promise.all(this.agents.map((a) => a.stop())), STOP_TIMEOUT_MS, () => `the agents did not all stop within ${STOP_TIMEOUT_MS / 1000} s`));
    return (performance.now() - t) / 1000;
  }

  /** Wait (bounded) until every agent has renewed at least once; seconds waited. */
  private async firstRenewals(timeoutS: number): Promise<number> {
    const t = performance.now();
    const pending = (): number => this.agents.filter((a) => a.stats.renewals === 0).length;
    for (; pending() > 0; await sleep(100)) {
      if (performance.now() - t > timeoutS * 1000) throw new Error(`${pending()} of ${this.agents.length} agents had not renewed within ${fmtS(timeoutS)} of registering`);
    }
    return (performance.now() - t) / 1000;
  }

  /** One load phase: (re)start the fleet at once in `mode` with lease `leaseS` (timing the registration), warm up, measure, check. */
  async load(kind: table.Kind, mode: Mode, leaseS: number, warmupS: number, windowS: number): Promise<void> {
    const { o, meter, guard, problems } = this;
    const fresh = this.agents.length === 0;
    if (!fresh) {
      log("fleet: stopping the agents");
      const stopS = await this.stop();
      const drainS = await guard(meter.drain());
      log(`  stopped in ${stopS.toFixed(2)} s; server quiet after ${drainS.toFixed(1)} s more`);
    }
    const streamsAtStart = meter.renewals.streamsOpened;
    this.agents = makeFleet(o, this.clients, leaseS, mode);
    log(`fleet: ${fresh ? "starting" : "restarting"} ${o.agents} agents at once, ${mode === "stream" ? "streaming heartbeat" : "unary RenewLease"}, lease ${leaseS} s`);
    const reg = await guard(registerFleet(meter, this.agents, o.registerTimeoutS));
    log(
      `  ${fresh ? "registered" : "re-registered"} ${reg.agents} in ${reg.seconds.toFixed(1)} s: ${fmtInt(reg.perSec)}/s (server Register OK ${reg.span.serverRegisterOk}, ` +
        `failures ${reg.span.agents.failures}, server CPU ${fmtPct(reg.span.serverCpu)}, client CPU ${fmtPct(reg.span.clientCpu)})`,
    );
    if (reg.span.serverRegisterOk < o.agents) problems.push(`registration (${mode}): the server counted ${reg.span.serverRegisterOk} Register OK for ${o.agents} agents`);

    // Warm up: until every agent has renewed once (the first renewal comes up to one interval after
    // registering; on the stream it opens the agent's stream), then warmupS more.
    const firstS = await guard(this.firstRenewals((leaseS / 4) * 1.1 + o.registerTimeoutS));
    log(`  every agent renewed once ${firstS.toFixed(1)} s after the last registration; warming up ${warmupS} s more`);
    await guard(sleep(warmupS * 1000));
    const before = totals(this.agents);
    const what = `${kind === "steady" ? "steady state" : "pushed"}, lease ${leaseS} s, ${mode}`;
    log(`fleet: ${what}: ${windowS} s`);
    // Sub-windows of at least one renewal period.
    const count = Math.max(1, Math.min(o.windows, Math.floor(windowS / (leaseS / 4))));
    const phase = await guard(meter.measure(windowS, count, (w, i) => log(`  [${i}/${count}] ${fmtWindow(w)}`)));
    const after = await guard(meter.snap());
    const streamsOpened = after.streamsOpened - streamsAtStart;
    const regWhat = fresh ? `new nodes (${mode} fleet, lease ${leaseS} s)` : `re-registration: restarted as ${mode}, lease ${leaseS} s (nodes exist)`;
    this.loads.push({ kind, mode, what, leaseS, windowS, reg, regWhat, phase, streamsOpened });

    // Every phase: no failure, every renewal answered OK, on the path of its mode only, one stream per agent in stream mode.
    const t = phase.total;
    const other: Mode = mode === "stream" ? "unary" : "stream";
    const failures = after.agents.failures - before.failures;
    if (failures !== 0) problems.push(`${what}: ${failures} agent failure(s) after registration (must be 0)`);
    if (t.serverRenewNotOk !== 0) problems.push(`${what}: the server answered ${t.serverRenewNotOk} renewal(s) with an error`);
    if (t.server[mode].ok === 0) problems.push(`${what}: the server counted no ${SERVER_METHOD[mode]} renewal`);
    if (t.server[other].ok + t.server[other].notOk !== 0) problems.push(`${what}: the server counted ${t.server[other].ok + t.server[other].notOk} ${SERVER_METHOD[other]} renewal(s) (fallback?)`);
    const wantStreams = mode === "stream" ? o.agents : 0;
    const w = phase.windows.find((x) => x.openStreams !== wantStreams);
    if (w) problems.push(`${what}: the server had ${w.openStreams} heartbeat streams open at a sub-window's end, not ${wantStreams}`);
    if (streamsOpened !== wantStreams) problems.push(`${what}: the agents opened ${streamsOpened} heartbeat stream(s) since they started, not ${wantStreams} (one each: none reopened)`);
    if (kind !== "steady") return;
    // Steady state: the whole offered load carried, nothing re-registered, every node Ready.
    const ready = sumOf(after.server, "nodeplane_nodes", { status: "True" });
    if (t.agents.registrations !== 0) problems.push(`${what}: ${t.agents.registrations} re-registration(s)`);
    if (ready !== o.agents) problems.push(`${what}: the controller counts ${ready} Ready nodes, not ${o.agents}`);
    if (t.renewalsPerSec < 0.9 * table.offered(o.agents, leaseS)) problems.push(`${what}: ${table.fmtRate(t.renewalsPerSec)} renewals/s, under 90% of the ~${fmtInt(table.offered(o.agents, leaseS))}/s offered`);
  }
}

async function main(): Promise<void> {
  const o = options();
  if (!fs.existsSync(NODEPLANE_BIN) || !fs.existsSync(path.join(ROOT, "dist/src/server/server.js"))) throw new Error("dist/ is missing: run `npm run build` first");
  const began = Date.now();
  exitAfter(o.deadlineS * 1000, "the fleet bench");
  // Registrations of 10,000 take ~5-8 s here, a stop and drain ~2-3 s; the first renewals come up to one interval after registering.
  const expectS = 3 + o.idleWindowS + 4 * (2 + o.agents / 1500 + 3) + 2 * (o.leaseS / 4 + o.warmupS + o.windowS) + 2 * (o.hardLeaseS / 4 + o.hardWarmupS + o.hardWindowS);
  log(
    `fleet${o.quick ? " (quick)" : ""}: ${o.agents} agents over ${o.channels} channels; idle ${o.idleWindowS} s; steady (lease ${o.leaseS} s) ${o.warmupS}+${o.windowS} s ` +
      `and pushed (lease ${o.hardLeaseS} s) ${o.hardWarmupS}+${o.hardWindowS} s, each for stream and unary; plus 4 registrations: about ${Math.round(expectS)} s (bounded at ${o.deadlineS} s)`,
  );

  const dataDir = tempDir("nodeplane-fleet-");
  const server = await spawnNodeplane({ dataDir });
  const address = `127.0.0.1:${server.port}`;
  log(`fleet: nodeplane serving at ${address} (pid ${server.child.pid}, data dir ${dataDir}, ${fsTypeOf(dataDir)})`);
  const serverDied = server.exited.then((e) => {
    const why = e.code === 0 ? " (a clean exit: it was sent SIGTERM or SIGINT by something outside this benchmark)" : "";
    throw new Error(`nodeplane exited (${e.code ?? e.signal}) during the run${why}:\n${server.output()}`);
  });
  serverDied.catch(() => {}); // raced below; not unhandled
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, serverDied]);

  let fleet: Fleet | undefined;
  const meter = new Meter(server, () => fleet?.agents ?? []);
  // One channel per client, each with its own HTTP/2 connection (grpc-js would otherwise share one subchannel); agents use them round-robin.
  const clients = Array.from({ length: o.channels }, () => new TimedClient(address, { channelOptions: { "grpc.use_local_subchannel_pool": 1 } }, meter.renewals));
  await guard(Promise.all(clients.map((c) => c.waitForReady(10_000))));
  fleet = new Fleet(o, clients, meter, guard);

  // 0. Idle.
  log(`fleet: server idle for ${o.idleWindowS} s`);
  const idleCount = Math.max(1, Math.min(o.windows, Math.floor(o.idleWindowS)));
  const idleLog = (w: Window, i: number): void => log(`  idle [${i}/${idleCount}] server CPU ${fmtPct(w.serverCpu)}  other ${fmtPct(w.otherCpu)}  server RSS ${fmtMiB(w.serverRss)}`);
  const idle = await guard(meter.measure(o.idleWindowS, idleCount, idleLog));
  // 1-3. Registration of new nodes, then the steady state at the default lease: stream, unary.
  await fleet.load("steady", "stream", o.leaseS, o.warmupS, o.windowS);
  await fleet.load("steady", "unary", o.leaseS, o.warmupS, o.windowS);
  // 4. Pushed: unary, stream (the other order).
  await fleet.load("pushed", "unary", o.hardLeaseS, o.hardWarmupS, o.hardWindowS);
  await fleet.load("pushed", "stream", o.hardLeaseS, o.hardWarmupS, o.hardWindowS);

  // Clean end.
  const end = await guard(meter.snap());
  log("fleet: stopping the agents");
  log(`  stopped in ${(await fleet.stop()).toFixed(2)} s`);
  for (const c of clients) c.close();
  const { problems } = fleet;
  problems.push(...meter.disagreements.slice(0, 5).map((d) => `renewal counts: ${d}`));
  if (meter.disagreements.length > 5) problems.push(`renewal counts: ${meter.disagreements.length - 5} more disagreement(s)`);
  await stopChecked(server, "nodeplane", problems);
  report(o, { agents: o.agents, idle, idleWindowS: o.idleWindowS, loads: fleet.loads }, { began, dataDir, problems, snaps: meter.snaps, end: end.server });
}

function report(o: Options, r: table.FleetReport, run: { began: number; dataDir: string; problems: string[]; snaps: number; end: Map<string, number> }): void {
  const { loads, idle } = r;
  const cpus = os.cpus().length;
  const main = table.mainTable(r);
  const regTable = table.registrationTable(r);
  const ready = sumOf(run.end, "nodeplane_nodes", { status: "True" });
  const warningLines = [...warnings.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `- ${fmtInt(n)} × ${k}`);
  const idleLine =
    `Server idle, no agents (${fmtS(o.idleWindowS)}): CPU ${fmtPct(idle.total.serverCpu)} (the baseline of "per renewal above idle"), ` +
    `RSS ${fmtMiB(table.maxOf(idle.windows, (w) => w.serverRss))}; client CPU ${fmtPct(idle.total.clientCpu)}; other load ${fmtPct(idle.total.otherCpu)}.`;
  const overloaded = loads.filter((l) => l.phase.total.renewalsPerSec < 0.9 * table.offered(o.agents, l.leaseS));
  const steadyPeaks = loads
    .filter((l) => l.kind === "steady")
    .map((l) => `${l.mode} ${fmtInt(table.peakOf(l))} at most in one second for ${table.fmtRate(l.phase.total.renewalsPerSec)}/s on average`)
    .join(", ");
  const checks =
    run.problems.length === 0
      ? "Checks: all agents registered every time; in every load phase no agent failure, every renewal answered OK, renewals only on the " +
        "mode's own path (no RenewLease in stream mode, no Heartbeat in unary mode), one heartbeat stream open per agent in stream mode (none in " +
        "unary) at every sub-window's end, and one opened per agent since its start (none reopened); in both steady states no re-registration, at least 90% of the offered renewals " +
        `carried and every node Ready; at each of ${run.snaps} snapshots the server's OK count of each path lay between the agents' renewals on ` +
        "that path answered OK before the scrape and begun after it; nodeplane shut down cleanly on SIGTERM."
      : `Checks FAILED:\n\n${run.problems.map((p) => `- ${p}`).join("\n")}`;
  const doc = [
    ...docHead(`Fleet benchmark: ${fmtInt(o.agents)} node agents against one server, streaming heartbeat vs unary RenewLease`, "fleet.js", run.began, run.dataDir),
    `- Fleet: ${fmtInt(o.agents)} NodeAgent instances (src/agent/agent.ts) in one Node process, sharing ${o.channels} NodeClient channels round-robin ` +
      "(one HTTP/2 connection each), with a fixed probe (a 32-core, 128 GiB Debian node: the status never changes, so no status is sent within the " +
      "5 min report period); default agent timings otherwise (a renewal every lease × 0.25 — on the stream, the interval the server asks for, the same " +
      "here — with 0–4 % jitter, the first one spread uniformly over one interval after registering; status computed every 10 s). " +
      "Server: `nodeplane serve` as a child process, SQLite store in a temp dir, default controllers (node lifecycle), default heartbeat rate cap (10,000/s).",
    "",
    "What is measured: how one nodeplane server carries a fleet's heartbeat as the real SDK agent produces it (closed loop per agent: " +
      "renew, then sleep), in the agent's two modes side by side: **stream** (the default: each agent keeps one Heartbeat stream open and sends " +
      'one message per renewal) and **unary** (`heartbeat: "unary"`, the baseline: one RenewLease call per renewal). Each load phase starts the ' +
      "fleet at once in one mode (the registration is timed), waits until every agent has renewed once (on the stream, the first renewal opens " +
      `the agent's stream: the window starts with every stream open), warms up ${fmtS(o.warmupS)} (pushed: ${fmtS(o.hardWarmupS)}) more, then measures. ` +
      "Renewals/s come from the agents' own `stats.renewals`; the benchmark's NodeClient also counts and times each renewal on both paths " +
      '(RenewLease calls, and `renew()` on every stream `heartbeat()` opens), cross-checked against the server\'s `nodeplane_heartbeats_total{code="OK"}` (stream) and ' +
      '`nodeplane_grpc_server_handled_total{method="RenewLease",code="OK"}` (unary). Latency is a renewal as the agents see it (queueing in either ' +
      "event loop included); the server handler time is nodeplane's own `nodeplane_grpc_server_handling_seconds` histogram for method Heartbeat or " +
      "RenewLease (the store's renewal up to its commit; p99 as the bucket bound that holds it). CPU is % of one core from /proc (server: its " +
      `/proc/<pid>/stat; client: this process, all ${fmtInt(o.agents)} agents and the benchmark's bookkeeping). Client and server share the ` +
      `machine's ${cpus} CPUs: read the two CPU columns and event-loop delays together to tell who is the bottleneck; "other load" is CPU taken ` +
      "by processes outside the benchmark, a noise indicator on this shared machine. The steady state runs stream first, the pushed phase unary first, " +
      "so that neither mode always comes first. Server RSS is the process's resident size, which carries over from phase to phase (V8 keeps " +
      "its heap's high-water mark), so it is no clean comparison between modes.",
    "",
    "Why one steady state and not two: the agents were all started at once, but each waits a random part of one interval before its first " +
      `renewal, so the fleet does not renew in step (peak renewals begun in one second: ${steadyPeaks}).`,
    "",
    idleLine,
    "",
    main,
    "",
    ...(overloaded.length
      ? [
          `Overloaded: ${overloaded.map((l) => `${l.what} carried ${table.fmtRate(l.phase.total.renewalsPerSec)} of ~${fmtInt(table.offered(o.agents, l.leaseS))} renewals/s (sub-windows ${l.phase.windows.map((w) => table.fmtRate(w.renewalsPerSec)).join(" / ")})`).join("; ")}. ` +
            "An agent waits for its renewal before it sleeps, so once renewals take longer than the interval the fleet piles up in flight " +
            "(in flight at the sub-window ends, below), the store commits a few huge batches per second and the rate falls; a window's average " +
            "then depends on when that began. Read the sub-windows, with their other-load column, before the ratio.",
          "",
        ]
      : []),
    "Registrations (every agent started at once; each restart reuses the nodes, so the server updates them; renewals meanwhile are the " +
      "agents' first renewals, spread over one interval, that fell before the last registration):",
    "",
    regTable,
    "",
    "Where the CPU went:",
    "",
    ...loads.map((l) => `- ${table.cpuSplit(l, cpus)}`),
    "",
    "Per sub-window (status sends, re-registrations, streams opened and server non-OK calls are totals over the window):",
    "",
    table.detailTable(r),
    "",
    `At the end: the controller counted ${fmtInt(ready)} Ready nodes and ${fmtInt(sumOf(run.end, "nodeplane_nodes") - ready)} not Ready; ` +
      `taints it added over the whole run: ${fmtInt(sumOf(run.end, "nodeplane_controller_taints_added_total"))}.`,
    "",
    checks,
    "",
    warningLines.length ? `Agent warnings over the whole run:\n\n${warningLines.join("\n")}` : "Agent warnings over the whole run: none.",
    "",
  ].join("\n");
  process.stdout.write(`\n${idleLine}\n\n${main}\n\n${regTable}\n\n${loads.map((l) => table.cpuSplit(l, cpus)).join("\n")}\n`);
  process.stdout.write(run.problems.length ? `\nChecks FAILED:\n${run.problems.map((p) => `- ${p}`).join("\n")}\n` : `\nChecks passed (${run.snaps} snapshots cross-checked).\n`);
  if (warningLines.length) process.stdout.write(`\nAgent warnings:\n${warningLines.join("\n")}\n`);
  finish({ name: "fleet", doc, out: o.out, rows: table.fleetSummary(r), failures: run.problems });
}

runMain("fleet bench", main);
