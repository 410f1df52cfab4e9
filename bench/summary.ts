/**
 * The one-line-per-target summary each benchmark hands to the suite (bench/suite.ts): when the
 * suite runs a benchmark it sets NODEPLANE_BENCH_SUMMARY to a file, and the benchmark appends
 * its summary there as one JSON line; run on its own, a benchmark writes no summary.
 */
import fs from "node:fs";

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
  /** The benchmark's script, e.g. "run.js". */
  bench: string;
  /** Its detailed results file (relative to the repository), when it wrote one. */
  details?: string;
  tookS: number;
  rows: SummaryRow[];
  /** Checks that failed (a benchmark that fails a check also exits 1). */
  failures: string[];
}

export const verdict = (met: boolean | undefined): SummaryRow["verdict"] => (met === undefined ? "–" : met ? "met" : "missed");

/** Hand the summary to the suite, if one is listening. */
export function emitSummary(s: BenchSummary): void {
  const file = process.env[SUMMARY_ENV];
  if (file) fs.appendFileSync(file, `${JSON.stringify(s)}\n`);
}
