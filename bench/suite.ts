/**
 * `npm run bench`: the whole benchmark suite, one benchmark process after another (never two at
 * once: the machine has 2 cores), each measuring nodeplane beside a baseline in the same run.
 * Writes bench/RESULTS.md — one table with every figure of issue 7 against its target, the
 * machine, the command — and prints the same table. Each benchmark also writes its own detailed
 * results file (bench/RESULTS-*.md), linked from the table.
 *
 *   1. heartbeat   bench/run.ts: RenewLease (unary) beside a trivial grpc-js handler and etcd 3.4
 *                  Put; the streaming Heartbeat as fast as it goes beside etcd Put
 *      heartbeat-hot   the same Heartbeat with every stream renewing one Lease (--hb-hot)
 *      heartbeat-etcd  the same Heartbeat with nodeplane on etcd (--store etcd) beside raw etcd Put
 *   2. controller  bench/controller-pass.ts: one node lifecycle controller pass over 100,000 nodes
 *   3. scale       bench/scale.ts: Register throughput with realistic nodes, RSS at 100,000 nodes,
 *                  restart to serving, then 100,000 nodes heartbeating every 10 s for 60 s
 *   4. watch       bench/watch-fanout.ts: 10,000 pinned + 10 all-node watchers at 1,000 changes/s
 *   5. dashboard   bench/dashboard.ts: the dashboard with 10,000 nodes in headless Chromium (first
 *                  render beside 100 nodes; render time and update delay with the page open)
 *   6. fleet       bench/fleet.ts (only with --fleet): 10,000 SDK NodeAgents, stream vs unary
 *
 * Tools: etcd (Debian etcd-server) for the etcd baseline and h2load (Debian nghttp2-client) as
 * the load generator; without them the heartbeat benchmark falls back to grpc-js load workers
 * and leaves the etcd ratios unjudged, and says so. Exits 1 if any benchmark failed a check.
 * Flags: --help.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ETCD_PACKAGE, findEtcd } from "./etcd.js";
import { Flags } from "./flags.js";
import { findH2load, H2LOAD_PACKAGE } from "./h2load.js";
import { benchScript, exitAfter, ROOT, runMain, tempDir, track } from "./harness.js";
import { fsTypeOf } from "./proc.js";
import { type BenchSummary, SUMMARY_ENV } from "./report.js";

const BENCHES = ["heartbeat", "heartbeat-hot", "heartbeat-etcd", "controller", "scale", "watch", "dashboard", "fleet"] as const;
type Bench = (typeof BENCHES)[number];

/** Each benchmark's script and its flags, full or quick (small sizes and short windows, about a minute in all). */
function steps(quick: boolean): Record<Bench, { script: string; args: string[] }> {
  return {
    heartbeat: { script: "run.js", args: quick ? ["--quick", "--levels", "64"] : ["--repeats", "2"] },
    // One hot Lease (issue 17), and nodeplane on etcd beside raw etcd Put/s on that etcd (issue 14): the Heartbeat only.
    "heartbeat-hot": { script: "run.js", args: ["--scenarios", "heartbeat", "--hb-hot", "--levels", "64", ...(quick ? ["--quick"] : ["--repeats", "2"])] },
    "heartbeat-etcd": { script: "run.js", args: ["--store", "etcd", "--scenarios", "heartbeat", "--levels", "64", ...(quick ? ["--quick"] : ["--repeats", "2"])] },
    controller: { script: "controller-pass.js", args: quick ? ["--nodes", "20000", "--passes", "3", "--out", ""] : ["--nodes", "100000", "--passes", "7"] },
    scale: { script: "scale.js", args: quick ? ["--quick", "--nodes", "5000", "--baseline-window", "2", "--settle", "1", "--steady-interval", "2", "--steady-window", "3"] : [] },
    watch: { script: "watch-fanout.js", args: quick ? ["--quick", "--nodes", "1000", "--window", "3", "--baseline-window", "2", "--warmup", "1"] : [] },
    dashboard: { script: "dashboard.js", args: quick ? ["--quick"] : [] },
    fleet: { script: "fleet.js", args: quick ? ["--quick"] : [] },
  };
}

interface Ran {
  bench: Bench;
  /** "heartbeat (bench/run.ts)". */
  name: string;
  script: string;
  args: string[];
  code: number | null;
  seconds: number;
  summaries: BenchSummary[];
}

function runStep(bench: Bench, step: { script: string; args: string[] }, summaryFile: string): Promise<Ran> {
  fs.writeFileSync(summaryFile, "");
  const started = performance.now();
  const child = track(
    spawn(process.execPath, [benchScript(step.script), ...step.args], { stdio: "inherit", env: { ...process.env, [SUMMARY_ENV]: summaryFile, npm_lifecycle_event: "" } }),
  );
  return new Promise((resolve) =>
    child.once("exit", (code, signal) =>
      resolve({
        bench,
        name: `${bench} (bench/${step.script.replace(/\.js$/, ".ts")})`,
        ...step,
        code: code ?? (signal ? 128 : 1),
        seconds: (performance.now() - started) / 1000,
        summaries: fs
          .readFileSync(summaryFile, "utf8")
          .split("\n")
          .filter((l) => l.trim())
          .map((l) => JSON.parse(l) as BenchSummary),
      }),
    ),
  );
}

const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function table(ran: Ran[]): string {
  const lines = ["| # | benchmark | scenario | result | baseline (same run) | target | verdict |", "|---|---|---|---|---|---|---|"];
  let k = 0;
  for (const r of ran) {
    if (r.summaries.length === 0) lines.push(`| ${++k} | ${r.name} | – | **failed before reporting (exit ${r.code})** | – | – | **failed** |`);
    for (const row of r.summaries.flatMap((s) => s.rows)) {
      const v = row.verdict === "met" ? "met" : row.verdict === "missed" ? "**missed**" : "–";
      lines.push(`| ${++k} | ${r.name} | ${cell(row.scenario)} | ${cell(row.result)} | ${cell(row.baseline)} | ${cell(row.target)} | ${v} |`);
    }
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const f = new Flags("suite.js", "SUITE");
  const quick = f.quick;
  const only = f.list("only", "", `some of ${BENCHES.join(",")} (default: all but fleet)`, BENCHES) as Bench[];
  const withFleet = f.bool("fleet", "add the fleet benchmark (about 3 more minutes)");
  const out = f.str("out", path.join(ROOT, quick ? "bench/RESULTS-quick.md" : "bench/RESULTS.md"), 'where to write the table ("" = nowhere)');
  f.done();
  exitAfter((quick ? 8 : 20) * 60_000, "the benchmark suite");

  const etcd = findEtcd();
  const h2load = findH2load();
  const notes: string[] = [];
  if ("missing" in etcd) notes.push(`etcd is missing (${etcd.missing}): no etcd baseline, no heartbeat-etcd step; \`apt-get install -y ${ETCD_PACKAGE}\` adds it.`);
  if ("missing" in h2load) {
    notes.push(`h2load is missing (${h2load.missing}): grpc-js load workers generate the load instead, no heartbeat-hot step; \`apt-get install -y ${H2LOAD_PACKAGE}\` adds it.`);
  }
  // Steps that cannot run without their tool are left out of the default set; named in --only, they run and refuse, naming the package.
  const runnable = (b: Bench): boolean => !(b === "heartbeat-etcd" && "missing" in etcd) && !(b === "heartbeat-hot" && "missing" in h2load);
  const chosen = only.length > 0 ? only : BENCHES.filter((b) => (b !== "fleet" || withFleet) && runnable(b));
  for (const n of notes) process.stdout.write(`suite: ${n}\n`);

  const began = Date.now();
  const tmp = tempDir("nodeplane-suite-");
  const all = steps(quick);
  const ran: Ran[] = [];
  for (const b of chosen) {
    process.stdout.write(`\nsuite: ${b}: node dist/bench/${all[b].script} ${all[b].args.join(" ")}\n`);
    const r = await runStep(b, all[b], path.join(tmp, `${b}.jsonl`));
    process.stdout.write(`suite: ${b} ${r.code === 0 ? "finished" : `FAILED (exit ${r.code})`} in ${Math.round(r.seconds)} s\n`);
    ran.push(r);
  }

  const failures = ran.flatMap((r) => [...(r.code === 0 ? [] : [`${r.name} exited ${r.code}`]), ...r.summaries.flatMap((s) => s.failures.map((x) => `${r.bench}: ${x}`))]);
  const rowsOf = ran.flatMap((r) => r.summaries.flatMap((s) => s.rows));
  const judged = rowsOf.filter((x) => x.verdict !== "–").length;
  const missed = rowsOf.filter((x) => x.verdict === "missed").length;
  const details = ran.flatMap((r) => r.summaries.flatMap((s) => (s.details ? [`[${s.details}](${path.relative("bench", s.details)})`] : [])));
  const cpus = os.cpus();
  const rows = table(ran);
  const failed = failures.length ? `CHECKS FAILED:\n${failures.map((x) => `- ${x}`).join("\n")}` : "";
  const doc = [
    `# nodeplane benchmarks${quick ? " (quick smoke run)" : ""}`,
    ...(quick ? ["", "A smoke run: a few thousand nodes instead of 100,000, one repeat, windows of seconds. Verdicts hold for these sizes only; quote the full run (bench/RESULTS.md)."] : []),
    "",
    `- Command: \`npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}\` (each benchmark as \`node dist/bench/SCRIPT ARGS\`: ${ran.map((r) => `\`${[r.script, ...r.args].join(" ")}\``).join(", ")})`,
    `- Date: ${new Date(began).toISOString()}, took ${Math.round((Date.now() - began) / 1000)} s (${ran.map((r) => `${r.bench} ${Math.round(r.seconds)} s`).join(", ")})`,
    `- Machine: ${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, ` +
      `${os.type()} ${os.release()} ${os.arch()}, temp dirs on ${fsTypeOf(os.tmpdir())} (${os.tmpdir()}); clients, servers and baselines share these CPUs`,
    `- Tools: ${"missing" in etcd ? "no etcd" : `etcd ${etcd.version}`}, ${"missing" in h2load ? "no h2load" : `h2load ${h2load.version}`}`,
    ...notes.map((n) => `- Note: ${n}`),
    "",
    "Every figure stands beside a baseline measured in the same run; machines here are shared and noisy, so read the ratios and the other-load columns of the detail files. " +
      `Targets are those each benchmark states (issue 7's; the heartbeat's also issues 17's and 14's); ${judged - missed} of ${judged} judged targets met.`,
    "",
    rows,
    "",
    details.length ? `Details, with every window and the exact commands: ${details.join(", ")}.` : "",
    "",
    "Why each missed target is missed, from the profiles (`--cpu-prof` on each benchmark), and what would fix it: the Performance section of [README.md](../README.md#performance).",
    "",
    failed || "Checks: every benchmark's own checks passed (no failed call, every write durable and counted by the server, clean shutdowns).",
    "",
    "Reproduce: `apt-get install -y etcd-server nghttp2-client`, then `npm ci` and `npm run bench` (about 15 minutes; `npm run bench -- --quick` is a smoke run of about a minute).",
    "",
  ].join("\n");
  process.stdout.write(`\n${rows}\n\n${failed ? `${failed}\n` : ""}`);
  if (out) {
    fs.writeFileSync(out, doc);
    process.stdout.write(`suite: wrote ${path.relative(process.cwd(), out) || out} (took ${Math.round((Date.now() - began) / 1000)} s)\n`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

runMain("bench suite", main);
