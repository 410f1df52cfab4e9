/**
 * How a benchmark reports: numbers formatted alike, the machine and command described alike,
 * its detailed results file written (not when profiling: profiles slow the servers; their
 * summaries are printed instead), and its one-line-per-target summary handed to the suite
 * (bench/suite.ts): the suite sets NODEPLANE_BENCH_SUMMARY to a file and each benchmark
 * appends its summary there as one JSON line; run on its own, a benchmark writes no summary.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./harness.js";
import { summarizeProfile } from "./profile-summary.js";
import { fsTypeOf } from "./proc.js";

export const SUMMARY_ENV = "NODEPLANE_BENCH_SUMMARY";

export interface SummaryRow {
  /** What was measured, e.g. "RenewLease (unary), 64 in flight". */
  scenario: string;
  /** The figure(s), e.g. "6,154 calls/s, p99 18.6 ms". */
  result: string;
  /** The baseline measured in the same run and the ratio to it, or "–". */
  baseline: string;
  /** Issue 7's target, or "–". */
  target: string;
  verdict: "met" | "missed" | "–";
}

export interface BenchSummary {
  /** Its detailed results file (relative to the repository), when it wrote one. */
  details?: string;
  rows: SummaryRow[];
  /** Checks that failed (a benchmark that fails a check also exits 1). */
  failures: string[];
}

export const verdict = (met: boolean | undefined): SummaryRow["verdict"] => (met === undefined ? "–" : met ? "met" : "missed");

// ---------------------------------------------------------------------------------------
// Numbers

export const median = (xs: number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–");
export const fmtMs = (n: number): string => (!Number.isFinite(n) ? "–" : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
export const fmtPct = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? "–" : `${Math.round(n)}%`);
/** A ratio a / b as "0.62×" ("–" when either is missing or b is 0). */
export const fmtRatio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? "–" : `${(a / b).toFixed(2)}×`;
export const fmtMiB = (bytes: number | undefined): string => (bytes === undefined || !Number.isFinite(bytes) ? "–" : `${Math.round(bytes / 2 ** 20)} MiB`);
export const fmtS = (s: number): string => `${Number.isInteger(s) ? s : s.toFixed(1)} s`;

/** A markdown table. */
export const mdTable = (head: string, align: string, rows: Array<Array<string | number>>): string =>
  [head, align, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");

// ---------------------------------------------------------------------------------------
// The results file

/** The machine, for a results file: CPUs, memory, Node, OS, and the file system of `dataDir`. */
export function machineLine(dataDir: string): string {
  const cpus = os.cpus();
  return (
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, data dirs on ${fsTypeOf(dataDir)} (${path.dirname(dataDir)})`
  );
}

/** The command that ran `script` with its flags. */
export const commandLine = (script: string): string => `node dist/bench/${script} ${process.argv.slice(2).join(" ")}`.trim();

/** The common head of a results file. */
export function docHead(title: string, script: string, began: number, dataDir: string): string[] {
  return [
    `# ${title}`,
    "",
    `- Command: \`npm run build && ${commandLine(script)}\``,
    `- Date: ${new Date(began).toISOString()} (took ${Math.round((Date.now() - began) / 1000)} s)`,
    `- Machine: ${machineLine(dataDir)}`,
  ];
}

export interface Finish {
  /** The benchmark's name in log lines. */
  name: string;
  /** The results file's text, and where to write it ("" = nowhere). */
  doc: string;
  out: string;
  /** With --cpu-prof: the profile dir and the profiles' names in it (summaries printed, no file written). */
  profDir?: string;
  profiles?: string[];
  rows: SummaryRow[];
  failures: string[];
}

/** Write the results file (or print the profiles), hand the summary to the suite, fail on failed checks. */
export function finish(f: Finish): void {
  if (f.profDir) {
    for (const name of f.profiles ?? []) {
      const file = path.join(f.profDir, `${name}.cpuprofile`);
      if (fs.existsSync(file)) process.stdout.write(`\n${summarizeProfile(file)}\n`);
      else process.stderr.write(`${f.name}: no profile at ${file}\n`);
    }
    process.stderr.write(`${f.name}: profiles kept in ${f.profDir}; no results file written (profiling slows the servers)\n`);
  } else if (f.out) {
    fs.writeFileSync(f.out, f.doc);
    process.stderr.write(`${f.name}: wrote ${path.relative(process.cwd(), f.out) || f.out}\n`);
  }
  const file = process.env[SUMMARY_ENV];
  const summary: BenchSummary = { details: f.out && !f.profDir ? path.relative(ROOT, f.out) : undefined, rows: f.rows, failures: f.failures };
  if (file) fs.appendFileSync(file, `${JSON.stringify(summary)}\n`);
  if (f.failures.length > 0) throw new Error(`${f.failures.length} check(s) failed:\n- ${f.failures.join("\n- ")}`);
}
