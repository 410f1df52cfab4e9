/**
 * One fuzz campaign: N bodies of one kind to one RPC, in batches, with the suite's assertions —
 *   1. every call ends with a gRPC status within CALL_TIMEOUT_MS (a hang is a failure);
 *   2. the status is never INTERNAL, UNKNOWN or another code a bad request must not cause;
 *   3. after every batch the server process is alive and answers health and a read;
 *   4. the store is unchanged by every rejected request: the store's revision moves by exactly
 *      the writes the batch's successful answers account for (writes that succeed are fine).
 * A batch that breaks 3 or 4 is replayed body by body to name the culprit. An identity may add
 * assertions of its own on each batch's answers (an Oracle: see identities.ts).
 *
 * Failures are grouped by what went wrong, each with the body that shows it: its index (bodies
 * are regenerated from seed + RPC + kind + index), how it was made, its first bytes, and a file
 * under the temp dir holding all of it.
 */
import { status } from "@grpc/grpc-js";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mutatedBody, randomBody, rngFor } from "./generators.js";
import type { FuzzRpc } from "./rpcs.js";
import { CALL_TIMEOUT_MS, type FuzzTarget, type Outcome } from "./target.js";

export type BodyKind = "random bytes" | "schema-mutated bodies";

export interface FuzzSettings {
  seed: number;
  /** Bodies per RPC, both kinds together (a quarter random bytes). */
  iterations: number;
  /** Only this body index (replaying one failure). */
  only: number | undefined;
}

/** Sized for `npm test` on a 2-core machine (see bodies.test.ts for what it costs). */
export const DEFAULT_SEED = 0x5eed_0011;
export const DEFAULT_ITERATIONS = 2000;

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): FuzzSettings {
  const int = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}=${raw}: want a non-negative integer`);
    return n;
  };
  return {
    seed: int("NODEPLANE_FUZZ_SEED") ?? DEFAULT_SEED,
    iterations: int("NODEPLANE_FUZZ_ITERATIONS") ?? DEFAULT_ITERATIONS,
    only: int("NODEPLANE_FUZZ_BODY"),
  };
}

export function bodyCount(kind: BodyKind, iterations: number): number {
  const random = Math.ceil(iterations / 4);
  return kind === "random bytes" ? random : iterations - random;
}

export interface Case {
  index: number;
  body: Uint8Array;
  recipe: string;
}

/** Body `index` of this RPC and kind: a pure function of its arguments. */
export function bodyFor(rpc: FuzzRpc, kind: BodyKind, seed: number, index: number): Case {
  const rng = rngFor(seed, rpc.name, kind, index);
  const made = kind === "random bytes" ? { body: randomBody(rng), recipe: "random" } : mutatedBody(rng, rpc.shape, rpc.bases);
  const body = rpc.prepare ? rpc.prepare(made.body) : made.body;
  return { index, body, recipe: made.recipe };
}

/** What a bad request may be answered with. Anything else — INTERNAL above all — is a failure. */
const ACCEPTABLE = new Set<status>([
  status.OK,
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.ABORTED,
  status.OUT_OF_RANGE,
  status.RESOURCE_EXHAUSTED,
  status.FAILED_PRECONDITION,
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
]);

const BATCH = 200;
const CONCURRENCY = 16;
const IN_FLIGHT_BYTES = 6 * 1024 * 1024;
/** Each batch with a hang costs CALL_TIMEOUT_MS (twice, with its replay): after this many, the campaign stops. */
const MAX_HANGING_BATCHES = 1;
/** Time spent replaying one batch while looking for a culprit… */
const REPLAY_BUDGET_MS = 60_000;
/** …and for one replayed call (a replay that hangs is not the culprit looked for). */
const REPLAY_CALL_TIMEOUT_MS = 10_000;

export interface Failure {
  /** Groups failures in the report: "INTERNAL: Error deserializing request". */
  what: string;
  example: Case;
  detail: string;
}

/**
 * Assertions an identity adds to the suite's: the failures among one batch's answers (each
 * outcome is `cases[i]`'s). It may make calls of its own; the store's revision is read again
 * after it, and its calls must leave the store as they found it (it checks that itself).
 */
export type Oracle = (target: FuzzTarget, rpc: FuzzRpc, cases: Case[], outcomes: Outcome[]) => Promise<Failure[]>;

export interface Report {
  sent: number;
  codes: Map<string, number>;
  failures: Failure[];
  /** What went wrong, and how to replay the first failure with `file` (the test file that ran it). */
  summary(file: string): string;
}

export async function runCampaign(target: FuzzTarget, rpc: FuzzRpc, kind: BodyKind, settings: FuzzSettings, oracle?: Oracle): Promise<Report> {
  const indexes = settings.only !== undefined ? [settings.only] : [...Array(bodyCount(kind, settings.iterations)).keys()];
  const codes = new Map<string, number>();
  const failures: Failure[] = [];
  let sent = 0;
  let hangingBatches = 0;
  let stopped: string | undefined;
  await target.seed();
  let before = await target.revision();
  for (let start = 0; start < indexes.length; start += BATCH) {
    const { cases, outcomes } = await sendBatch(target, rpc, kind, settings.seed, indexes.slice(start, start + BATCH));
    sent += cases.length;
    const health = await target.health();
    cases.forEach((c, i) => {
      const o = outcomes[i]!;
      codes.set(status[o.code] ?? String(o.code), (codes.get(status[o.code] ?? String(o.code)) ?? 0) + 1);
      // When the server went down, the batch's UNAVAILABLE answers are that, reported once below.
      const consequence = !health.up && o.code === status.UNAVAILABLE;
      if (!ACCEPTABLE.has(o.code) && !consequence) failures.push(statusFailure(c, o, target));
    });
    if (!health.up) {
      failures.push(await findKiller(target, rpc, cases, outcomes, health.why));
      stopped = "stopped: the server went down";
      break;
    }
    if (!accountedFor(outcomes.map((outcome) => ({ rpc, outcome })), before, health.revision)) {
      failures.push(...(await findStoreChanger(target, rpc, cases, outcomes, before, health.revision)));
    }
    if (oracle) failures.push(...(await oracle(target, rpc, cases, outcomes)));
    if (outcomes.some((o) => o.code === status.DEADLINE_EXCEEDED)) {
      // What hung may have broken the connection it came on: the next batch gets a new one.
      target.reconnect();
      await replayHangs(target, rpc, cases, outcomes, failures);
      if (++hangingBatches >= MAX_HANGING_BATCHES) {
        stopped = `stopped after ${hangingBatches} batch(es) with calls that hung`;
        break;
      }
    }
    // The client ends each answered stream with RST_STREAM; nghttp2 closes a connection whose
    // peer resets streams faster than its rapid-reset guard allows (a burst of 1,000, then
    // 33/s). A new connection per batch keeps the fuzz below it.
    if (rpc.answeredAtFirstMessage) target.reconnect();
    // Writes may have deleted or changed the seed nodes: the next batch starts from them again.
    const now = oracle ? await target.revision() : health.revision;
    const moved = now !== before;
    before = now;
    if (moved) {
      await target.seed();
      before = await target.revision();
    }
  }
  return { sent, codes, failures, summary: (file) => summarize(rpc, kind, settings, sent, codes, failures, stopped, file) };
}

/** Calls whose answer was lost: a write among them may have committed, legitimately. */
const FATE_UNKNOWN = new Set<status>([status.DEADLINE_EXCEEDED, status.UNAVAILABLE, status.CANCELLED]);

/**
 * Whether the store's move from `before` to `after` is what the calls' answers account for:
 * one revision per new revision named by an answer and per unnamed write, plus at most one per
 * write call whose answer was lost (each of those is a failure of its own already). Every other
 * revision is a change made by a rejected request (or, for a read RPC, by any request).
 */
export function accountedFor(calls: { rpc: Pick<FuzzRpc, "written">; outcome: Outcome }[], before: bigint, after: bigint): boolean {
  const named = new Set<string>();
  let unnamed = 0;
  let lost = 0;
  for (const { rpc, outcome: o } of calls) {
    if (!rpc.written) continue;
    if (FATE_UNKNOWN.has(o.code)) lost++;
    if (o.responses.length === 0) continue;
    const w = rpc.written(o.responses);
    for (const rv of w.revisions) if (BigInt(rv) > before) named.add(rv);
    unnamed += w.unnamed;
  }
  const exact = BigInt(named.size + unnamed);
  return after - before >= exact && after - before <= exact + BigInt(lost);
}

function statusFailure(c: Case, o: Outcome, target: FuzzTarget): Failure {
  const name = status[o.code] ?? `code ${o.code}`;
  if (o.code === status.DEADLINE_EXCEEDED) return { what: `no status within ${CALL_TIMEOUT_MS / 1000} s (a hang)`, example: c, detail: o.details };
  const internal = o.code === status.INTERNAL && /request id/.test(o.details);
  return {
    what: `${name}: ${normalize(o.details)}`,
    example: c,
    // An INTERNAL from our error map has its cause in the server's log.
    detail: internal ? `${o.details}\nserver log ends:\n${target.stderrTail(1200)}` : o.details,
  };
}

/**
 * The server died or stopped answering: replay the batch's unanswered bodies, on a fresh server
 * whenever the last one went down, to name the killer. It was in flight when the server went
 * down: calls that reached the server come first, then those refused a connection afterwards.
 */
async function findKiller(target: FuzzTarget, rpc: FuzzRpc, cases: Case[], outcomes: Outcome[], down: string): Promise<Failure> {
  const unanswered = cases.filter((_, i) => !ACCEPTABLE.has(outcomes[i]!.code));
  const neverSent = (c: Case): boolean => /ECONNREFUSED|No connection established/.test(outcomes[cases.indexOf(c)]!.details);
  const suspects = [...unanswered.filter((c) => !neverSent(c)), ...unanswered.filter(neverSent)];
  const deadline = Date.now() + REPLAY_BUDGET_MS;
  for (const c of suspects.slice(0, 2 * CONCURRENCY)) {
    if (Date.now() > deadline) break;
    await target.ensureUp();
    await target.seed();
    await target.call(rpc, c.body, REPLAY_CALL_TIMEOUT_MS);
    const again = await target.health();
    if (!again.up) return { what: "server down after a request", example: c, detail: `replayed alone on a fresh server, this body takes it down:\n${again.why}` };
  }
  return {
    what: "server down after a batch (no single body reproduces it)",
    example: suspects[0] ?? cases[0]!,
    detail: `${down}\nunanswered bodies in the batch (those that reached the server first): ${suspects.map((c) => `#${c.index}`).join(" ") || "none"}`,
  };
}

/** The store moved more than the successes account for: replay suspects one at a time. */
async function findStoreChanger(
  target: FuzzTarget,
  rpc: FuzzRpc,
  cases: Case[],
  outcomes: Outcome[],
  before: bigint,
  after: bigint,
): Promise<Failure[]> {
  // A rejected request must change nothing; a read must change nothing even when it succeeds.
  const suspects = cases.filter((_, i) => outcomes[i]!.code !== status.OK || !rpc.written);
  const found: Failure[] = [];
  const deadline = Date.now() + REPLAY_BUDGET_MS;
  for (const c of suspects) {
    if (Date.now() > deadline) break;
    await target.seed();
    const b = await target.revision();
    const o = await target.call(rpc, c.body, REPLAY_CALL_TIMEOUT_MS);
    const a = await target.revision();
    if (!accountedFor([{ rpc, outcome: o }], b, a)) {
      const answer = `${status[o.code]} ${o.details}`.slice(0, 300);
      found.push({ what: `store changed by a request answered ${status[o.code]}`, example: c, detail: `revision ${b} → ${a}; answer: ${answer}` });
      if (found.length >= 3) break;
    }
  }
  if (found.length > 0) return found;
  return [
    {
      what: "store changed by the batch beyond its successful writes (no single body reproduces it)",
      example: cases[0]!,
      detail: `revision ${before} → ${after}; answers: ${[...new Set(outcomes.map((o) => status[o.code]))].join(", ")}`,
    },
  ];
}

/**
 * Sends the bodies CONCURRENCY at a time, in index order, with at most IN_FLIGHT_BYTES of them
 * in flight (a larger one goes alone): an HTTP/2 session buffers what it receives up to a memory
 * cap (10 MB in Node), and a batch that overflows it would measure the cap, not the requests.
 */
async function sendBatch(target: FuzzTarget, rpc: FuzzRpc, kind: BodyKind, seed: number, indexes: number[]): Promise<{ cases: Case[]; outcomes: Outcome[] }> {
  const cases: Case[] = [];
  const outcomes: Outcome[] = [];
  let next = 0;
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const worker = async (): Promise<void> => {
    for (let at = next++; at < indexes.length; at = next++) {
      const c = (cases[at] = bodyFor(rpc, kind, seed, indexes[at]!));
      while (inFlight > 0 && inFlight + c.body.length > IN_FLIGHT_BYTES) await new Promise<void>((resolve) => waiting.push(resolve));
      inFlight += c.body.length;
      outcomes[at] = await target.call(rpc, c.body);
      inFlight -= c.body.length;
      for (const wake of waiting.splice(0)) wake();
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, indexes.length) }, worker));
  return { cases, outcomes };
}

/** Replays the first call that hung, alone on a new connection, and notes whether it hangs alone too. */
async function replayHangs(target: FuzzTarget, rpc: FuzzRpc, cases: Case[], outcomes: Outcome[], failures: Failure[]): Promise<void> {
  for (const c of cases.filter((_, i) => outcomes[i]!.code === status.DEADLINE_EXCEEDED).slice(0, 1)) {
    const f = failures.find((x) => x.example === c);
    if (!f) continue;
    const again = await target.call(rpc, c.body);
    target.reconnect();
    f.detail +=
      again.code === status.DEADLINE_EXCEEDED
        ? "\nreplayed alone on a new connection: it hangs again"
        : `\nreplayed alone on a new connection it is answered ${status[again.code]}: another request of its batch broke the connection`;
  }
}

/** Digits and quoted values vary per body; the kind of answer does not. */
function normalize(details: string): string {
  return details
    .replace(/\(request id [^)]*\)/g, "(request id …)")
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\d+/g, "N")
    .slice(0, 140);
}

const DUMP_DIR = join(tmpdir(), "nodeplane-fuzz-failures");

function describeCase(rpc: FuzzRpc, kind: BodyKind, seed: number, c: Case): string {
  mkdirSync(DUMP_DIR, { recursive: true });
  const file = join(DUMP_DIR, `${rpc.name}-${kind.split(" ")[0]}-${seed}-${c.index}.bin`);
  writeFileSync(file, c.body);
  const hex = Buffer.from(c.body.subarray(0, 64)).toString("hex");
  return `body #${c.index} (${c.recipe}), ${c.body.length} bytes: ${hex}${c.body.length > 64 ? "…" : ""} (all of it: ${file})`;
}

function summarize(
  rpc: FuzzRpc,
  kind: BodyKind,
  s: FuzzSettings,
  sent: number,
  codes: Map<string, number>,
  failures: Failure[],
  stopped: string | undefined,
  file: string,
): string {
  const groups = new Map<string, Failure[]>();
  for (const f of failures) groups.set(f.what, [...(groups.get(f.what) ?? []), f]);
  const lines = [
    `${rpc.name}, ${kind}: ${failures.length} failing of ${sent} sent (seed ${s.seed}; answers: ${[...codes].map(([k, v]) => `${k} ${v}`).join(", ")})${stopped ? `; ${stopped}` : ""}`,
  ];
  for (const [what, list] of groups) {
    const first = list[0]!;
    lines.push(`- ${what} ×${list.length}`, `  e.g. ${describeCase(rpc, kind, s.seed, first.example)}`);
    if (first.detail) lines.push(`  ${first.detail.replace(/\n/g, "\n  ")}`);
  }
  const t = JSON.stringify(`${rpc.name}: ${kind}`);
  lines.push(`replay one: NODEPLANE_FUZZ_SEED=${s.seed} NODEPLANE_FUZZ_BODY=${first(failures)} npx vitest run ${file} -t ${t}`);
  return lines.join("\n");
}

const first = (failures: Failure[]): number => failures[0]?.example.index ?? 0;
