/**
 * Part of `npm run bench` (bench/suite.ts), or on its own: what one node heartbeat costs nodeplane,
 * beside its baselines measured in the same run by the same generator at the same concurrency.
 * Writes bench/RESULTS-heartbeat.md (-heartbeat-hot.md with --hb-hot, -heartbeat-etcd.md with
 * --store etcd; a quick run writes none) and prints the same tables.
 *
 *  1. RenewLease (unary) at rising concurrency against
 *       - nodeplane (a renewal answered from memory, made durable by the next Lease checkpoint;
 *         on SQLite, or with --store etcd on the run's etcd under nodeplane's own key prefix),
 *       - the trivial grpc-js server answering a constant RenewLeaseResponse (bench/trivial-server.ts:
 *         the ceiling of grpc-js, our stack, on this machine),
 *       - etcd 3.4 answering a Put of a Lease-sized value to the node's Lease key (what Kubernetes
 *         pays per renewal; bench/etcd.ts starts it on loopback in a temp dir).
 *  2. The streaming heartbeat (rpc Heartbeat, bidi) as fast as it goes: renewals/s from
 *     nodeplane's own counter and the store's writes per renewal, beside etcd's Put/s measured
 *     right next to it; with --hb-hot every stream renews one node (one hot Lease; h2load only).
 *
 * The load comes from h2load when installed, else grpc-js worker processes (bench/heartbeat-load.ts);
 * each measurement is checked against the servers' own counters (bench/heartbeat-measure.ts).
 * Everything is bounded and local (127.0.0.1); children are killed and temp dirs removed on any
 * exit (bench/harness.ts). Flags (or env BENCH_<NAME>): --help.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NodeClient } from "../src/client/index.js";
import { Lease } from "../src/gen/nodeplane/v1/lease.js";
import type { NodeInput } from "../src/client/client.js";
import { ETCD_PACKAGE, findEtcd, startEtcd, type Tool } from "./etcd.js";
import { Flags } from "./flags.js";
import { findH2load, H2LOAD_PACKAGE } from "./h2load.js";
import { exitAfter, runMain, spawnNodeplane, spawnTrivial, stopChecked, tempDir } from "./harness.js";
import { type Generator, h2loadGenerator, type Servers, type Target, workersGenerator } from "./heartbeat-load.js";
import { type Measurement, measure, type TargetServer } from "./heartbeat-measure.js";
import { Report, summarize, type Variant } from "./heartbeat-report.js";
import { fsTypeOf } from "./proc.js";
import { registerRange } from "./register.js";
import { docHead, finish, fmtInt, fmtMs, fmtPct } from "./report.js";

const log = (s: string): void => void process.stderr.write(`${s}\n`);

function options() {
  const f = new Flags("run.js", "BENCH");
  const q = f.quick;
  const o = {
    quick: q,
    durationS: f.num("duration", q ? 2 : 2.5, 0.5, 120, "measured seconds per measurement", false),
    warmupS: f.num("warmup", q ? 0.5 : 1, 0, 60, "warm-up seconds before each measurement", false),
    nodes: f.num("nodes", q ? 1024 : 2048, 2, 100_000, "nodes registered"),
    workers: f.num("workers", Math.min(8, Math.max(2, os.cpus().length)), 1, 32, "grpc-js load worker processes"),
    levels: f.list("levels", q ? "64,256" : "16,64,256", "calls in flight for RenewLease").map(Number),
    repeats: f.num("repeats", q ? 1 : 3, 1, 20, "measurements per (target, level); medians are reported"),
    hbConns: f.num("hb-conns", 16, 1, 256, "Heartbeat: connections (h2load processes or share of workers)"),
    hbStreams: f.num("hb-streams", 4, 1, 1024, "Heartbeat: streams per connection"),
    generator: f.list("generator", "auto", "auto (h2load when installed), h2load or grpc-js", ["auto", "h2load", "grpc-js"])[0]!,
    scenarios: new Set(f.list("scenarios", "renew,heartbeat", "which of the two parts", ["renew", "heartbeat"])),
    etcd: !f.bool("no-etcd", "skip the etcd baseline"),
    store: f.list("store", "sqlite", "where nodeplane keeps its data: sqlite (a temp dir) or etcd (the run's etcd, beside the Put baseline)", ["sqlite", "etcd"])[0] as Variant["store"],
    hbHot: f.bool("hb-hot", "Heartbeat: every stream renews one node's Lease (one hot Lease; needs h2load)"),
    cpuProf: f.bool("cpu-prof", "profile nodeplane and the trivial server (node --cpu-prof) and summarise; no results file"),
  };
  const out = f.out(`heartbeat${o.store === "etcd" ? "-etcd" : ""}${o.hbHot ? "-hot" : ""}`);
  f.done();
  if (o.store === "etcd" && !o.etcd) throw new Error("--store etcd runs nodeplane on the run's etcd: drop --no-etcd");
  if (o.hbHot && o.generator === "grpc-js") throw new Error(`--hb-hot needs h2load as the generator (Debian ${H2LOAD_PACKAGE}), not --generator grpc-js`);
  if (o.hbHot && !o.scenarios.has("heartbeat")) throw new Error("--hb-hot changes the heartbeat scenario: add heartbeat to --scenarios");
  if (o.levels.some((l) => !Number.isInteger(l) || l < 1 || l > 1024)) throw new Error(`--levels ${o.levels.join(",")}: want comma-separated integers in [1, 1024]`);
  // Never two calls renewing one node at once (they would queue behind each other in nodeplane).
  for (const l of o.levels) {
    if (l > o.nodes || Math.ceil(l / o.workers) > Math.floor(o.nodes / o.workers)) {
      throw new Error(`--nodes ${o.nodes} is too few for ${l} calls in flight over ${o.workers} workers: two calls would renew one node at once`);
    }
  }
  const streams = o.hbConns * o.hbStreams;
  if (Math.floor((o.nodes - 1) / o.hbConns) < 1 || Math.ceil(streams / o.workers) > Math.floor((o.nodes - 1) / o.workers)) {
    throw new Error(`--nodes ${o.nodes} is too few for ${streams} Heartbeat streams (${o.hbConns} × ${o.hbStreams})`);
  }
  return { ...o, out, streams };
}

type Options = ReturnType<typeof options>;

const benchNodeName = (i: number): string => `bench-node-${String(i).padStart(5, "0")}`;

/** A small node (the heartbeat touches only its Lease). */
function smallNode(i: number): NodeInput {
  const name = benchNodeName(i);
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "nodeplane.io/bench": "true" } },
    status: {
      capacity: { cpu: "4", memory: "16Gi", pods: "110" },
      allocatable: { cpu: "3800m", memory: "15Gi", pods: "110" },
      addresses: [
        { type: "InternalIP", address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}` },
        { type: "Hostname", address: name },
      ],
      conditions: [{ type: "Ready", status: "True", reason: "AgentReady", message: "agent is posting ready status" }],
      nodeInfo: { kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12", operatingSystem: "linux", architecture: "amd64", agentVersion: "0.1.0" },
    },
  };
}

/** What is installed decides the generator and the baselines; say so, never crash on it (unless --generator h2load, --hb-hot or --store etcd needs it). */
function tools(o: Options, notes: string[]): { h2load: Tool | undefined; etcdBin: Tool | undefined } {
  const say = (msg: string): void => void (log(`bench: ${msg}`), notes.push(msg));
  let h2load: Tool | undefined;
  if (o.generator !== "grpc-js") {
    const found = findH2load();
    if (!("missing" in found)) h2load = found;
    else if (o.generator === "h2load" || o.hbHot) {
      throw new Error(`h2load not found: ${found.missing}; ${o.hbHot ? "--hb-hot" : "--generator h2load"} needs it: \`apt-get install -y ${H2LOAD_PACKAGE}\``);
    }
    else say(`h2load not found: ${found.missing}. Install it with \`apt-get install -y ${H2LOAD_PACKAGE}\`; using grpc-js worker processes as the generator instead.`);
  }
  let etcdBin: Tool | undefined;
  if (!o.etcd) notes.push("The etcd baseline was skipped (--no-etcd).");
  else {
    const found = findEtcd();
    if (!("missing" in found)) etcdBin = found;
    else if (o.store === "etcd") throw new Error(`etcd not found: ${found.missing}; --store etcd needs it: \`apt-get install -y ${ETCD_PACKAGE}\``);
    else say(`etcd not found: ${found.missing}. Install it with \`apt-get install -y ${ETCD_PACKAGE}\`; the etcd baseline is skipped.`);
  }
  return { h2load, etcdBin };
}

/** Checks at the end, the servers' own view: a spread of the renewed nodes' Leases renewed since `since`. */
async function checkRenewed(address: string, renewed: number[], since: Date): Promise<number> {
  const client = new NodeClient(address);
  try {
    let checked = 0;
    for (let k = 0; k < renewed.length; k += Math.max(1, Math.floor(renewed.length / 20))) {
      const name = benchNodeName(renewed[k]!);
      const at = (await client.getLease(name)).spec?.renewTime;
      if (!at || at < since) throw new Error(`lease of ${name} was last renewed ${at?.toISOString() ?? "never"}, before the load started`);
      checked++;
    }
    return checked;
  } finally {
    client.close();
  }
}

/**
 * The servers: etcd first (when it starts; with --store etcd it must, and nodeplane keeps its data
 * there under its default key prefix, apart from the Put baseline's keys), nodeplane with the nodes
 * registered, the trivial server answering one of its Leases.
 */
async function startServers(o: Options, etcdBin: Tool | undefined, notes: string[]) {
  const tmp = tempDir("nodeplane-bench-");
  const dataDir = path.join(tmp, "data");
  fs.mkdirSync(dataDir);
  const profDir = o.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-bench-prof-")) : undefined;
  const etcd = etcdBin
    ? await startEtcd(etcdBin).catch((err: unknown) => {
        const msg = `etcd ${etcdBin.version} could not be started (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`;
        if (o.store === "etcd") throw new Error(`${msg}; --store etcd needs it`);
        log(`bench: ${msg}; the etcd baseline is skipped.`);
        notes.push(`${msg}; the etcd baseline is skipped.`);
        return undefined;
      })
    : undefined;
  if (etcd) log(`bench: etcd ${etcd.version} at ${etcd.clientUrl} (data dir ${etcd.dataDir}, ${fsTypeOf(etcd.dataDir)})`);
  const storeArgs = o.store === "etcd" ? ["--store", "etcd", "--etcd-endpoints", etcd!.clientUrl] : [];
  const nodeplane = await spawnNodeplane({ dataDir, args: storeArgs, profile: profDir ? { dir: profDir, name: "nodeplane" } : undefined });
  const address = `127.0.0.1:${nodeplane.port}`;
  log(`bench: nodeplane serving at ${address} (${o.store === "etcd" ? `store: etcd at ${etcd!.clientUrl}` : `data dir ${dataDir}, ${fsTypeOf(dataDir)}`})`);
  const t = Date.now();
  const client = new NodeClient(address, { timeoutMs: 30_000 });
  await client.waitForReady(10_000);
  await registerRange(client, 0, o.nodes, 32, { node: smallNode });
  log(`bench: registered ${o.nodes} nodes in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const lease = Buffer.from(Lease.encode(await client.renewLease(benchNodeName(0)).finally(() => client.close())).finish());
  const trivial = await spawnTrivial(profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, "--cpu-prof-name=trivial.cpuprofile"] : [], lease.toString("base64"));
  log(`bench: trivial server at 127.0.0.1:${trivial.port}, answering a ${lease.length}-byte Lease`);
  if (etcd) log(`bench: etcd Puts write ${lease.length}-byte values`);
  const targets: Partial<Record<Target, TargetServer>> = {
    nodeplane: { pid: nodeplane.child.pid, metrics: { httpPort: nodeplane.httpPort } },
    trivial: { pid: trivial.child.pid },
    ...(etcd ? { etcd: { pid: etcd.child.pid, metrics: { etcdUrl: etcd.clientUrl } } } : {}),
  };
  const servers: Servers = {
    address: { nodeplane: address, trivial: `127.0.0.1:${trivial.port}`, ...(etcd ? { etcd: `127.0.0.1:${etcd.port}` } : {}) },
    etcdUrl: etcd?.clientUrl,
  };
  /** Stop them all; nodeplane and the trivial server must exit cleanly on SIGTERM. */
  const stop = async (): Promise<void> => {
    const failures: string[] = [];
    await stopChecked(nodeplane, "nodeplane", failures);
    await stopChecked(trivial, "the trivial server", failures);
    await etcd?.stop();
    if (failures.length > 0) throw new Error(failures.join("; "));
  };
  return { tmp, dataDir, profDir, address, lease, etcd, targets, servers, stop };
}

type Started = Awaited<ReturnType<typeof startServers>>;

async function main(): Promise<void> {
  const o = options();
  const began = Date.now();
  const notes: string[] = [];
  const { h2load, etcdBin } = tools(o, notes);
  const perMeasureS = o.warmupS + o.durationS + (h2load ? 1.2 : 0.6);
  const planned = (o.scenarios.has("renew") ? o.levels.length * (etcdBin ? 3 : 2) : 0) + (o.scenarios.has("heartbeat") ? (etcdBin ? 2 : 1) : 0);
  const plannedS = planned * o.repeats * perMeasureS;
  log(
    `bench: ${o.quick ? "QUICK, " : ""}${o.nodes} nodes, generator ${h2load ? `h2load ${h2load.version}` : `grpc-js (${o.workers} workers)`}, ` +
      `etcd ${etcdBin ? etcdBin.version : "skipped"}, RenewLease in-flight ${o.levels.join("/")}, Heartbeat ${o.streams} streams, ` +
      `${o.repeats}× (${o.warmupS} s warm-up + ${o.durationS} s): about ${Math.round(plannedS)} s of load`,
  );
  // A bound against a hang, not a schedule: each measurement also starts its generator (up to
  // ~17 s for 256 h2load processes on this machine) and may start it again once. Full runs took
  // 369-379 s of a bound of 386 s, and two in a row were stopped just past it.
  exitAfter(Math.round(plannedS * 2 + planned * o.repeats * 20 + 180) * 1000, "the heartbeat benchmark");

  const s = await startServers(o, etcdBin, notes);
  const names = Array.from({ length: o.nodes }, (_, i) => benchNodeName(i));
  const gen = h2load ? await h2loadGenerator(o, h2load, names, s.servers, s.lease, s.tmp) : await workersGenerator(o, names, s.servers, s.lease);
  const loadStarted = new Date();
  const measurements = o.scenarios.has("renew") ? await renewPart(o, s.targets, gen) : [];
  if (o.scenarios.has("heartbeat")) measurements.push(...(await heartbeatPart(o, s.targets, gen, measurements)));
  // The servers' own view at the end: leases really renewed, clean shutdowns.
  const checked = await checkRenewed(s.address, [...gen.renewed].sort((a, b) => a - b), loadStarted);
  await gen.stop();
  await s.stop();
  report(o, { began, notes, s, gen, h2load, etcdBin, measurements, checked });
}

function report(
  o: Options,
  r: { began: number; notes: string[]; s: Started; gen: Generator; h2load: Tool | undefined; etcdBin: Tool | undefined; measurements: Measurement[]; checked: number },
): void {
  const { s, measurements } = r;
  const report = new Report(summarize(measurements), s.etcd?.version ?? "", { store: o.store, hot: o.hbHot });
  const noisy = measurements.filter((m) => (m.otherCpu ?? 0) > 25);
  if (noisy.length > 0) {
    r.notes.push(
      `Other jobs on this machine took more than 25% of a core during ${noisy.length} of ${measurements.length} windows ` +
        `(up to ${fmtPct(Math.max(...noisy.map((m) => m.otherCpu ?? 0)))}; column "other load"): ` +
        "those figures are low and noisy; read the ratios of neighbouring measurements, and rerun on a quiet machine for absolute numbers.",
    );
  }
  const renew = o.scenarios.has("renew") ? report.renewTable() : "";
  const concurrency = r.h2load ? `${o.streams} streams (${o.hbConns} conns × ${o.hbStreams})` : `${o.streams} streams (${o.workers} workers)`;
  const heartbeat = o.scenarios.has("heartbeat") ? report.heartbeatTable(concurrency) : "";
  const rows = report.summaryRows();
  const targetsText = rows.map((x) => `- ${x.scenario}: ${x.result}. Baseline: ${x.baseline}. Target ${x.target}: **${x.verdict}**.`).join("\n");
  const doc = [
    ...docHead("Heartbeat benchmark: RenewLease and the streaming Heartbeat beside grpc-js and etcd", "run.js", r.began, s.dataDir),
    `- Generator: ${r.gen.describe(o.streams)}`,
    "- Baselines: the trivial grpc-js server (bench/trivial-server.ts) serving the same NodeService definition, answering a constant RenewLeaseResponse: " +
      "the ceiling of grpc-js, our stack, on this machine. " +
      (s.etcd
        ? `etcd ${s.etcd.version} (\`${r.etcdBin!.path}\`, Debian ${ETCD_PACKAGE}), one member on loopback, data dir in a temp dir on the same disk, default settings (fsync on every commit), ` +
          `answering \`etcdserverpb.KV/Put\` of the node's Lease key (/registry/leases/kube-node-lease/NAME) with a ${s.lease.length}-byte value ` +
          "(a real Lease as nodeplane stores it): what Kubernetes pays per renewal, at least."
        : "etcd: not in this run."),
    `- Windows: ${o.warmupS} s warm-up then ${o.durationS} s measured; ${o.repeats} repeat(s) per target and level, rotating which target goes first; ` +
      "figures are medians of the repeats, each ratio the median of per-repeat ratios (targets measured back to back). Clients and servers share the machine's CPUs.",
    ...r.notes.map((n) => `- Note: ${n}`),
    "",
    "What is measured: a node heartbeat end to end. In nodeplane a renewal of a Lease the server knows is applied in memory and answered at once; every " +
      "--lease-checkpoint-interval (1 s) one checkpoint writes each Lease renewed since the last one, once (a compare-and-swap txn per 128 Leases), and renewals wait for " +
      "their checkpoint while one lags (README, Lease renewals). Store writes per renewal are the store's revisions per renewal over the window " +
      "(one revision per transaction: a checkpoint txn of up to 128 Leases is one): far below 1. " +
      `Store: ${o.store === "etcd" ? `etcd (nodeplane --store etcd on the run's etcd ${s.etcd?.version ?? ""}, the one the Put baseline writes to, under its own key prefix)` : "SQLite (WAL, synchronous=FULL) in a temp dir"}.` +
      (o.hbHot ? " Heartbeat: every stream renews the same node (one hot Lease)." : ""),
    "",
    ...(renew ? ["## 1. RenewLease (unary) at rising concurrency", "", renew, ""] : []),
    ...(heartbeat ? ["## 2. Streaming heartbeat, as fast as it goes", "", heartbeat, ""] : []),
    "## Targets (issues 7, 14 and 17)",
    "",
    targetsText,
    "",
    "A missed target is explained by a profile: `node dist/bench/run.js --cpu-prof --scenarios heartbeat` (or `renew`) profiles nodeplane and the trivial server " +
      "and prints where their CPU goes.",
    "",
    "## Details",
    "",
    "Server CPU is % of one core over the window (/proc); generator CPU is all h2load processes or workers together; other load is CPU taken by processes outside the benchmark " +
      "(other jobs on this shared machine), a noise indicator; server-counted calls/s is the server's own OK counter over the window (nodeplane /metrics, etcd's grpc_server_handled_total); " +
      "handler mean is nodeplane's handling-time histogram; writes/call is the store revision (nodeplane) or MVCC revision (etcd) delta per OK call: 1.00 = one committed write each; " +
      "group commits/s, txns/commit and time in commits come from nodeplane's store metrics (time in commits = share of the window the store's writer thread spent applying " +
      "and committing batches, fsync included; the main thread serves gRPC meanwhile); all connections answered after: from the last h2load process start until every one " +
      "of them had had its first answer — the window (calls/s, latencies) starts no earlier, so a slow admission of new connections (a reconnect storm) is shown here rather " +
      "than mixed into the steady state.",
    "",
    report.detailTable(),
    "",
    `Checks: ${fmtInt(measurements.reduce((a, m) => a + m.calls, 0))} measured calls/renewals; in every window the servers counted no failed call; ` +
      (r.h2load
        ? "every request body was sent once by hand first and answered grpc-status 0; h2load's answers all carried a gRPC message (response bytes); " +
          "nodeplane and etcd counted at least as many OK calls as h2load did; "
        : "every worker call answered OK and nodeplane's (and etcd's) OK counters matched the workers' exactly; ") +
      `${r.checked} sampled leases (of the ${r.gen.renewed.size} nodes renewed) were renewed during the run; nodeplane shut down cleanly on SIGTERM.`,
    "",
  ].join("\n");
  process.stdout.write(`\n${renew ? `${renew}\n\n` : ""}${heartbeat ? `${heartbeat}\n\n` : ""}${targetsText}\n`);
  finish({ name: "bench", doc, out: o.out, profDir: s.profDir, profiles: ["nodeplane", "trivial"], rows, failures: [] });
}

const logged = (m: Measurement, repeats: number): Measurement => {
  log(
    `  [${m.repeat + 1}/${repeats}] ${m.scenario === "renew" ? "unary    " : "heartbeat"} ${m.target.padEnd(9)} ${String(m.inFlight).padStart(4)}: ` +
      `${fmtInt(m.callsPerSec).padStart(7)}/s  p50 ${fmtMs(m.p50Ms).padStart(5)} ms  p99 ${fmtMs(m.p99Ms).padStart(5)} ms  ` +
      `server ${m.serverPerSec === undefined ? "–" : fmtInt(m.serverPerSec)}/s CPU ${fmtPct(m.serverCpu).padStart(4)}  generator CPU ${fmtPct(m.clientCpu).padStart(4)}  other load ${fmtPct(m.otherCpu).padStart(4)}`,
  );
  return m;
};

/** 1. RenewLease at each level against each target, rotating which goes first. */
async function renewPart(o: Options, targets: Partial<Record<Target, TargetServer>>, gen: Generator): Promise<Measurement[]> {
  log("bench: 1. RenewLease (unary) at rising concurrency");
  const available = Object.keys(targets) as Target[];
  const out: Measurement[] = [];
  for (let r = 0; r < o.repeats; r++) {
    for (let l = 0; l < o.levels.length; l++) {
      for (const target of available.map((_, k) => available[(k + r + l) % available.length]!)) {
        out.push(logged(await measure(targets, "renew", target, o.levels[l]!, r, gen.unary(target, o.levels[l]!)), o.repeats));
      }
    }
  }
  return out;
}

/** 2. The Heartbeat as fast as it goes, beside etcd at the concurrency where it did best in part 1 (else 64). */
async function heartbeatPart(o: Options, targets: Partial<Record<Target, TargetServer>>, gen: Generator, part1: Measurement[]): Promise<Measurement[]> {
  const etcdPart1 = summarize(part1).filter((x) => x.target === "etcd");
  const etcdLevel = etcdPart1.length ? etcdPart1.reduce((a, b) => (b.callsPerSec > a.callsPerSec ? b : a)).inFlight : Math.min(64, o.nodes);
  log(`bench: 2. streaming Heartbeat as fast as it goes (${o.streams} streams)${targets.etcd ? `, beside etcd Put at ${etcdLevel} in flight` : ""}`);
  const out: Measurement[] = [];
  for (let r = 0; r < o.repeats; r++) {
    const order: Target[] = targets.etcd ? (r % 2 === 0 ? ["nodeplane", "etcd"] : ["etcd", "nodeplane"]) : ["nodeplane"];
    for (const target of order) {
      const [inFlight, drive] = target === "nodeplane" ? [o.streams, gen.heartbeat(o.streams)] : [etcdLevel, gen.unary("etcd", etcdLevel)];
      out.push(logged(await measure(targets, "heartbeat", target, inFlight, r, drive), o.repeats));
    }
  }
  return out;
}

runMain("bench", main);
