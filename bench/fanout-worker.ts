/**
 * A worker of bench/watch-fanout.ts, in one of two roles (argv[2]):
 *   watcher: holds Watch streams through the SDK: one pinned to each node of its range (field
 *     selector `metadata.name=NAME`, --per-channel to a grpc-js channel, each channel its own TCP
 *     connection) and sets of watchers of every node, each set on a channel of its own; per event
 *     it records the delivery latency and which write reached which watcher.
 *   writer: changes random nodes with UpdateStatus at a paced rate (open loop), stamping each.
 * The stamp is the node's Ready condition message `bench seq=S t=T`: S the write's sequence number
 * (unique over the run), T the writer's clock (epoch ms) just before the call, the clock the
 * watchers read too. Every call has a deadline, each run a watchdog.
 */
import { setMaxListeners } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { NodeClient, type WatchEvent } from "../src/client/client.js";
import { NodeServiceService, UpdateStatusResponse } from "../src/gen/nodeplane/v1/service.js";
import { scaleNodeName } from "../test/support/realistic-node.js";
import { StampedRequests } from "./fanout-request.js";
import { epochNow, prng, sleep } from "./harness.js";
import { H2Unary } from "./h2-unary.js";
import { loopbackOnly, serve } from "./ipc.js";
import { Errors, Histogram, type HistogramWire } from "./tally.js";

const STAMP = /^bench seq=(\d+) t=(\d+(?:\.\d+)?)$/;
const channelOptions = { "grpc.use_local_subchannel_pool": 1 };
/** A write issued more than this after its scheduled time is late (the writer could not keep the pace). */
const LATE_MS = 50;

// ---------------------------------------------------------------------------------------
// watcher

export interface WatcherInit {
  index: number;
  address: string;
  /** Node indices [from, to) this process pins one watcher each to, `perChannel` to a channel. */
  pinnedFrom: number;
  pinnedTo: number;
  perChannel: number;
  /** Watchers of every node in each set this process opens; sequence numbers are below `maxSeq`. */
  all: number;
  maxSeq: number;
}

/** One set of all-node watchers, opened together on a channel of their own. */
interface AllSet {
  abort: AbortController;
  client: NodeClient;
  /** Per watcher, by sequence number: how many times it got that write (saturating at 255). */
  got: Uint8Array[];
  /** Per watcher: its stream ended or failed (cut off) before the set was closed. */
  ended: boolean[];
  events: number[];
}

const abortController = (): AbortController => {
  const a = new AbortController();
  setMaxListeners(0, a.signal); // one listener per watch stream
  return a;
};

class Watchers {
  private readonly pinnedClients: NodeClient[] = [];
  private readonly pinnedAbort = abortController();
  private readonly sets: AllSet[] = [];
  private readonly windows: Array<{ phase: string; startAt: number; endAt: number; pinned: Histogram; all: Histogram }> = [];
  /** By sequence number: index of the node whose pinned watcher got that write (-1 none, -2 more than once). */
  private readonly pinnedGot: Int32Array;
  private pinnedEvents = 0;
  /** Events a pinned watcher got for another node; events without a bench stamp or not MODIFIED; pinned streams that ended. */
  private wrongNode = 0;
  private foreign = 0;
  private pinnedStreamErrors = 0;
  private readonly samples: string[] = [];

  constructor(private readonly init: WatcherInit) {
    loopbackOnly(init.address);
    this.pinnedGot = new Int32Array(init.maxSeq).fill(-1);
  }

  private client(flowWindow: number): NodeClient {
    return new NodeClient(this.init.address, { channelOptions: flowWindow > 0 ? { ...channelOptions, "grpc-node.flow_control_window": flowWindow } : channelOptions });
  }

  private sample(s: string): void {
    if (this.samples.length >= 10) return;
    this.samples.push(s);
    if (this.samples.length <= 3) process.stderr.write(`${new Date().toISOString()} fanout-worker watcher ${this.init.index}: ${s}\n`);
  }

  /** Open this process's pinned watchers (`perChannel` to a channel). */
  async openPinned(flowWindow: number): Promise<number> {
    const { pinnedFrom, pinnedTo, perChannel } = this.init;
    let client: NodeClient | undefined;
    for (let i = pinnedFrom; i < pinnedTo; i++) {
      if ((i - pinnedFrom) % perChannel === 0) {
        this.pinnedClients.push((client = this.client(flowWindow)));
        await client.waitForReady(10_000);
      }
      const name = scaleNodeName(i);
      void this.follow(client!, `metadata.name=${name}`, this.pinnedAbort.signal, (ev) => this.onPinned(ev, i, name), () => this.pinnedStreamErrors++);
    }
    return pinnedTo - pinnedFrom;
  }

  /** Open a new set of this process's all-node watchers, on a channel of their own. */
  async openAll(flowWindow: number): Promise<number> {
    const set: AllSet = { abort: abortController(), client: this.client(flowWindow), got: [], ended: [], events: [] };
    this.sets.push(set);
    await set.client.waitForReady(10_000);
    for (let k = 0; k < this.init.all; k++) {
      const got = new Uint8Array(this.init.maxSeq);
      set.got.push(got);
      set.ended.push(false);
      set.events.push(0);
      void this.follow(set.client, "", set.abort.signal, (ev) => this.onAll(ev, got, set, k), () => (set.ended[k] = true));
    }
    return this.init.all;
  }

  /** Cancel the latest set of all-node watchers (their record stays for the report). */
  closeAll(): void {
    const set = this.sets.at(-1);
    set?.abort.abort();
    set?.client.close();
  }

  private async follow(client: NodeClient, fieldSelector: string, signal: AbortSignal, onEvent: (ev: WatchEvent) => void, onEnded: () => void): Promise<void> {
    try {
      for await (const ev of client.watch({ fieldSelector }, { signal })) onEvent(ev);
      onEnded();
      this.sample(`watch ${fieldSelector || "(all)"} ended by the server`);
    } catch (err) {
      if (signal.aborted) return;
      onEnded();
      this.sample(`watch ${fieldSelector || "(all)"} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Counts only (cheap), for progress: pinned events, all-node watchers of the latest set that ended, events of the others. */
  status() {
    const set = this.sets.at(-1);
    return {
      pinnedEvents: this.pinnedEvents,
      allEnded: set ? set.ended.filter(Boolean).length : 0,
      allAliveEvents: set ? set.events.reduce((a, n, k) => (set.ended[k] ? a : a + n), 0) : 0,
      samples: this.samples,
    };
  }

  /** The stamp of a bench write, or undefined (counted as foreign). */
  private stamped(ev: WatchEvent): { seq: number; t: number; latencyUs: number } | undefined {
    const now = epochNow();
    const message = ev.node.status?.conditions.find((c) => c.type === "Ready")?.message ?? "";
    const m = STAMP.exec(message);
    const seq = m ? Number(m[1]) : -1;
    if (ev.type !== "MODIFIED" || !m || seq >= this.init.maxSeq) {
      this.foreign++;
      this.sample(`unexpected ${ev.type} of ${ev.node.metadata?.name ?? "?"} at ${ev.resourceVersion}: Ready message ${JSON.stringify(message)}`);
      return undefined;
    }
    const t = Number(m[2]);
    return { seq, t, latencyUs: Math.max(0, now - t) * 1000 };
  }

  private windowOf(t: number): (typeof this.windows)[number] | undefined {
    return this.windows.find((w) => t >= w.startAt && t < w.endAt);
  }

  private onPinned(ev: WatchEvent, index: number, name: string): void {
    const s = this.stamped(ev);
    if (!s) return;
    this.pinnedEvents++;
    if (ev.node.metadata?.name !== name) {
      this.wrongNode++;
      this.sample(`the watcher pinned to ${name} got an event of ${ev.node.metadata?.name ?? "?"}`);
    }
    this.pinnedGot[s.seq] = this.pinnedGot[s.seq] === -1 ? index : -2;
    this.windowOf(s.t)?.pinned.record(s.latencyUs);
  }

  private onAll(ev: WatchEvent, got: Uint8Array, set: AllSet, k: number): void {
    const s = this.stamped(ev);
    if (!s) return;
    set.events[k]!++;
    if (got[s.seq]! < 255) got[s.seq]!++;
    this.windowOf(s.t)?.all.record(s.latencyUs);
  }

  /** Record latencies of writes stamped in [startAt, endAt) under `phase`. */
  setWindow(phase: string, startAt: number, endAt: number): void {
    this.windows.push({ phase, startAt, endAt, pinned: new Histogram(), all: new Histogram() });
  }

  report() {
    const phases: Record<string, { pinned: HistogramWire; all: HistogramWire }> = {};
    for (const w of this.windows) phases[w.phase] = { pinned: w.pinned.wire(), all: w.all.wire() };
    return {
      index: this.init.index,
      phases,
      pinnedGot: this.pinnedGot,
      /** Per set of all-node watchers (in the order opened), per watcher. */
      allSets: this.sets.map((x) => ({ got: x.got, ended: x.ended })),
      wrongNode: this.wrongNode,
      foreign: this.foreign,
      pinnedStreamErrors: this.pinnedStreamErrors,
      samples: this.samples,
    };
  }

  close(): void {
    this.pinnedAbort.abort();
    for (const c of this.pinnedClients) c.close();
    for (const set of this.sets) {
      set.abort.abort();
      set.client.close();
    }
  }
}

// ---------------------------------------------------------------------------------------
// writer

export interface WriterRun {
  phase: string;
  /** Epoch ms at which writing starts; the measured window is [startAt + warmupMs, + durationMs). */
  startAt: number;
  warmupMs: number;
  durationMs: number;
  /** UpdateStatus calls per second, paced; ramped up linearly over the warm-up (processes and JITs start cold). */
  rate: number;
  /** Calls in flight at most; a write due while this many are in flight waits (and may be late). */
  maxInFlight: number;
  deadlineMs: number;
}

/**
 * The writer is load, not a client under test: it calls UpdateStatus over a bare HTTP/2 session
 * (bench/h2-unary.ts: the server gets the requests a grpc-js client sends, without grpc-js's
 * per-call cost in this process), with each node's status encoded once and only its conditions
 * per write (bench/fanout-request.ts), and decodes one answer in VERIFY_EVERY, so that it leaves
 * the CPU to the server and the watchers.
 */
const VERIFY_EVERY = 97;

class Writer {
  private readonly random: () => number;
  private readonly requests = new StampedRequests();
  private nextSeq = 0;

  constructor(
    private readonly init: { address: string; nodeCount: number; maxSeq: number; seed: number },
    private readonly client: H2Unary,
  ) {
    this.random = prng(init.seed);
  }

  async run(cmd: WriterRun) {
    // Writes due by `ms` after startAt (a linear ramp over the warm-up, then the full rate), and its inverse.
    const dueAt = (ms: number): number =>
      ms <= 0 ? 0 : ms < cmd.warmupMs ? (cmd.rate * ms * ms) / (2 * cmd.warmupMs) / 1000 : (cmd.rate * (cmd.warmupMs / 2 + (ms - cmd.warmupMs))) / 1000;
    const rampWrites = (cmd.rate * cmd.warmupMs) / 2 / 1000;
    const scheduleOf = (k: number): number => (k < rampWrites ? Math.sqrt((2 * cmd.warmupMs * k * 1000) / cmd.rate) : cmd.warmupMs + ((k - rampWrites) * 1000) / cmd.rate);
    const planned = Math.floor(dueAt(cmd.warmupMs + cmd.durationMs));
    let total = planned;
    const seqFrom = this.nextSeq;
    if (seqFrom + total > this.init.maxSeq) throw new Error(`writes would pass maxSeq ${this.init.maxSeq}`);
    const nodeOf = new Int32Array(total).fill(-1);
    const windowStart = cmd.startAt + cmd.warmupMs;
    const windowEnd = windowStart + cmd.durationMs;
    const hist = new Histogram();
    const errors = new Errors();
    let issued = 0;
    let acked = 0;
    let inFlight = 0;
    let windowWrites = 0;
    let maxLagMs = 0;
    let lateWrites = 0;

    await sleep(cmd.startAt - epochNow());
    await new Promise<void>((resolve) => {
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearInterval(ticker);
        clearTimeout(watchdog);
        if (inFlight > 0) errors.add("STUCK", `${inFlight} writes unanswered ${cmd.deadlineMs + 3000} ms after the last was issued`);
        if (issued < planned) errors.add("BEHIND", `the writer fell so far behind that ${planned - issued} writes were never issued`);
        resolve();
      };
      // Writes are issued until 1 s after the window at the latest; each has a deadline.
      const watchdog = setTimeout(finish, windowEnd - epochNow() + 1000 + cmd.deadlineMs + 3000);
      const settled = (): void => {
        inFlight--;
        if (issued === total && inFlight === 0) finish();
      };
      const issue = (): void => {
        const seq = seqFrom + issued;
        const node = Math.floor(this.random() * this.init.nodeCount);
        nodeOf[issued++] = node;
        inFlight++;
        const name = scaleNodeName(node);
        const t0 = epochNow();
        const inWindow = t0 >= windowStart && t0 < windowEnd;
        if (inWindow) windowWrites++;
        this.client.call(NodeServiceService.updateStatus.path, this.requests.request(node, name, seq, t0), cmd.deadlineMs).then(
          (res) => {
            const answered = res.length === 0 ? "(nothing)" : seq % VERIFY_EVERY === 0 ? (UpdateStatusResponse.decode(res).node?.metadata?.name ?? "?") : name;
            if (answered !== name) errors.add("VERIFY", `updated ${name}, answered ${answered}`);
            else {
              acked++;
              if (inWindow) hist.record((epochNow() - t0) * 1000);
            }
            settled();
          },
          (err: unknown) => {
            const code = (err as { code?: number }).code;
            errors.add(code !== undefined ? (grpc.status[code] ?? String(code)) : "error", err instanceof Error ? err.message : String(err));
            settled();
          },
        );
      };
      const tick = (): void => {
        const now = epochNow();
        if (now > windowEnd + 1000 && issued < total) total = issued; // hopelessly behind: stop (reported)
        const due = Math.min(total, Math.floor(dueAt(now - cmd.startAt)));
        while (issued < due && errors.total < 100 && inFlight < cmd.maxInFlight) {
          const scheduled = cmd.startAt + scheduleOf(issued);
          if (scheduled >= windowStart) {
            if (now - scheduled > LATE_MS) lateWrites++;
            maxLagMs = Math.max(maxLagMs, now - scheduled);
          }
          issue();
        }
        if (errors.total >= 100 || (issued === total && inFlight === 0)) finish();
      };
      const ticker = setInterval(tick, 1);
      tick();
    });
    this.nextSeq = seqFrom + planned;
    return {
      phase: cmd.phase,
      /** Sequence numbers of this run: [seqFrom, seqTo); nodeOf[s - seqFrom] is the node written. */
      seqFrom,
      seqTo: seqFrom + issued,
      nodeOf: nodeOf.slice(0, issued),
      acked,
      /** UpdateStatus latency (issue to answer) of writes issued inside the window, µs. */
      hist: hist.wire(),
      windowWrites,
      windowMs: cmd.durationMs,
      /** Writes due in the window: most the writer fell behind its schedule (ms), and how many it issued more than 50 ms late. */
      maxLagMs,
      lateWrites,
      errors: errors.wire(),
    };
  }

  close(): void {
    this.client.close();
  }
}

// ---------------------------------------------------------------------------------------

let watchers: Watchers | undefined;
let writer: Writer | undefined;

const watcherApi = {
  init: async (init: WatcherInit): Promise<void> => void (watchers = new Watchers(init)),
  /** Open the pinned watchers, or a new set of all-node watchers; HTTP/2 window of the new channels in bytes, 0 = grpc-js's 64 KiB. */
  open: ({ which, flowWindow }: { which: "all" | "pinned"; flowWindow: number }): Promise<number> =>
    which === "all" ? watchers!.openAll(flowWindow) : watchers!.openPinned(flowWindow),
  closeAll: async (): Promise<void> => watchers!.closeAll(),
  window: async ({ phase, startAt, endAt }: { phase: string; startAt: number; endAt: number }): Promise<void> => watchers!.setWindow(phase, startAt, endAt),
  status: async () => watchers!.status(),
  report: async () => watchers!.report(),
};

const writerApi = {
  async init(init: { address: string; nodeCount: number; maxSeq: number; seed: number }): Promise<void> {
    writer = new Writer(init, await H2Unary.connect(init.address));
  },
  run: (cmd: WriterRun) => writer!.run(cmd),
};

export type WatcherApi = typeof watcherApi;
export type WriterApi = typeof writerApi;

const role = process.argv[2];
if (role === "watcher") serve("fanout-worker watcher", watcherApi, () => watchers?.close());
else if (role === "writer") serve("fanout-worker writer", writerApi, () => writer?.close());
else {
  process.stderr.write("usage: fanout-worker watcher|writer (spawned by bench/watch-fanout.js)\n");
  process.exit(2);
}
