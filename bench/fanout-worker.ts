/**
 * A worker of bench/watch-fanout.ts, in one of two roles (argv[2]):
 *
 *   watcher: holds Watch streams through the SDK (NodeClient.watch): one per node of its range
 *     pinned by the field selector `metadata.name=NAME`, spread over several grpc-js channels
 *     (`grpc.use_local_subchannel_pool`, so each channel is its own TCP connection), plus a few
 *     watchers of every node on a channel of their own. It records, per event, the delivery
 *     latency (its clock at receipt minus the writer's stamp in the node's Ready condition) and
 *     which write (sequence number) reached which watcher, for the exactly-once check.
 *   writer: changes random nodes with UpdateStatus at a paced rate (open loop: a write is due at
 *     its scheduled time whether or not earlier ones have been answered), stamping each.
 *
 * Bounded: every call has a deadline, each run a watchdog; the worker exits when its parent
 * goes away.
 */
import { setMaxListeners } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { NodeClient, type WatchEvent } from "../src/client/client.js";
import { Histogram } from "./histogram.js";
import {
  type FromWatcher,
  type FromWriter,
  type HistogramWire,
  STAMP,
  stamp,
  type ToWatcher,
  type ToWriter,
  type WatcherInit,
  type WatcherReport,
  type WatcherStatus,
  type WriterInit,
  type WriterResult,
  type WriterRun,
} from "./fanout-protocol.js";
import { NodeStatus } from "../src/gen/nodeplane/v1/node.js";
import { NodeServiceService, UpdateStatusRequest, UpdateStatusResponse } from "../src/gen/nodeplane/v1/service.js";
import { realisticStatus, scaleNodeName } from "../test/support/realistic-node.js";
import { epochNow, prng, serveParent, sleep } from "./worker-side.js";

const wire = (h: Histogram): HistogramWire => ({ data: h.data(), count: h.count, sumUs: h.sumUs, minUs: h.minUs, maxUs: h.maxUs });
const channelOptions = { "grpc.use_local_subchannel_pool": 1 };
const UPDATE_STATUS = NodeServiceService.updateStatus.path;
/** A write issued more than this after its scheduled time is late (the writer could not keep the pace). */
const LATE_MS = 50;

function refuseRemote(address: string): void {
  if (!address.startsWith("127.0.0.1:")) throw new Error(`refusing non-loopback address ${address}`);
}

// ---------------------------------------------------------------------------------------
// watcher

interface Window {
  phase: string;
  startAt: number;
  endAt: number;
  pinned: Histogram;
  all: Histogram;
}

/** One set of all-node watchers, opened together on a channel of their own. */
interface AllSet {
  abort: AbortController;
  client: NodeClient;
  /** Per watcher, by sequence number: how many times it got that write. */
  got: Uint8Array[];
  /** Per watcher: its stream ended or failed (cut off) before the set was closed. */
  ended: boolean[];
  /** Per watcher: events received. */
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
  private readonly windows: Window[] = [];
  private readonly pinnedGot: Int32Array;
  private pinnedEvents = 0;
  private allEvents = 0;
  private wrongNode = 0;
  private foreign = 0;
  private pinnedStreamErrors = 0;
  private readonly samples: string[] = [];

  constructor(private readonly init: WatcherInit) {
    refuseRemote(init.address);
    this.pinnedGot = new Int32Array(init.maxSeq).fill(-1);
  }

  private client(flowWindow: number): NodeClient {
    const opts = flowWindow > 0 ? { ...channelOptions, "grpc-node.flow_control_window": flowWindow } : channelOptions;
    return new NodeClient(this.init.address, { channelOptions: opts });
  }

  private sample(s: string): void {
    if (this.samples.length < 10) {
      this.samples.push(s);
      if (this.samples.length <= 3) process.stderr.write(`${new Date().toISOString()} fanout-worker watcher ${this.init.index}: ${s}\n`);
    }
  }

  /** Open this process's pinned watchers (`perChannel` to a channel). */
  async openPinned(flowWindow: number): Promise<number> {
    const { pinnedFrom, pinnedTo, perChannel } = this.init;
    let client: NodeClient | undefined;
    for (let i = pinnedFrom; i < pinnedTo; i++) {
      if ((i - pinnedFrom) % perChannel === 0) {
        client = this.client(flowWindow);
        this.pinnedClients.push(client);
        await client.waitForReady(10_000);
      }
      const name = scaleNodeName(i);
      void this.follow(client!, `metadata.name=${name}`, this.pinnedAbort.signal, (ev) => this.onPinned(ev, i, name), () => {
        this.pinnedStreamErrors++;
      });
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
      void this.follow(set.client, "", set.abort.signal, (ev) => this.onAll(ev, got, set, k), () => {
        set.ended[k] = true;
      });
    }
    return this.init.all;
  }

  /** Cancel the latest set of all-node watchers (their record stays for the report). */
  closeAll(): void {
    const set = this.sets.at(-1);
    if (!set) return;
    set.abort.abort();
    set.client.close();
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

  status(): WatcherStatus {
    const set = this.sets.at(-1);
    return {
      type: "status",
      index: this.init.index,
      pinnedEvents: this.pinnedEvents,
      allEvents: this.allEvents,
      pinnedStreamErrors: this.pinnedStreamErrors,
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

  private windowOf(t: number): Window | undefined {
    for (const w of this.windows) if (t >= w.startAt && t < w.endAt) return w;
    return undefined;
  }

  private onPinned(ev: WatchEvent, index: number, name: string): void {
    const s = this.stamped(ev);
    if (!s) return;
    this.pinnedEvents++;
    if (ev.node.metadata?.name !== name) {
      this.wrongNode++;
      this.sample(`the watcher pinned to ${name} got an event of ${ev.node.metadata?.name ?? "?"}`);
    }
    const prev = this.pinnedGot[s.seq]!;
    this.pinnedGot[s.seq] = prev === -1 ? index : -2;
    this.windowOf(s.t)?.pinned.record(s.latencyUs);
  }

  private onAll(ev: WatchEvent, got: Uint8Array, set: AllSet, k: number): void {
    const s = this.stamped(ev);
    if (!s) return;
    this.allEvents++;
    set.events[k]!++;
    if (got[s.seq]! < 255) got[s.seq]!++;
    this.windowOf(s.t)?.all.record(s.latencyUs);
  }

  setWindow(phase: string, startAt: number, endAt: number): void {
    this.windows.push({ phase, startAt, endAt, pinned: new Histogram(), all: new Histogram() });
  }

  report(): WatcherReport {
    const phases: WatcherReport["phases"] = {};
    for (const w of this.windows) phases[w.phase] = { pinned: wire(w.pinned), all: wire(w.all) };
    return {
      type: "report",
      index: this.init.index,
      phases,
      pinnedGot: this.pinnedGot,
      allSets: this.sets.map((x) => ({ got: x.got, ended: x.ended })),
      pinnedEvents: this.pinnedEvents,
      allEvents: this.allEvents,
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

/**
 * The writer is load, not a client under test: it calls UpdateStatus through grpc-js directly
 * with each node's status built once (only the Ready condition's message changes per write) and
 * decodes one answer in VERIFY_EVERY, so that it leaves the CPU to the server and the watchers.
 */
const VERIFY_EVERY = 97;
const identity = (b: Buffer): Buffer => b;

class Writer {
  private readonly client: grpc.Client;
  private readonly random: () => number;
  private readonly statuses = new Map<number, NodeStatus>();
  private nextSeq = 0;

  constructor(private readonly init: WriterInit) {
    refuseRemote(init.address);
    this.client = new grpc.Client(init.address, grpc.credentials.createInsecure(), channelOptions);
    this.random = prng(init.seed);
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => this.client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  }

  /** UpdateStatusRequest bytes for node `i` with the Ready condition's message `message`. */
  private request(i: number, name: string, message: string, at: Date): Buffer {
    let status = this.statuses.get(i);
    if (!status) this.statuses.set(i, (status = NodeStatus.fromPartial(realisticStatus(i, name))));
    const conditions = status.conditions.map((c) => (c.type === "Ready" ? { ...c, message, lastHeartbeatTime: at } : { ...c, lastHeartbeatTime: at }));
    return Buffer.from(UpdateStatusRequest.encode({ name, status: { ...status, conditions }, resourceVersion: "" }).finish());
  }

  private updateStatus(req: Buffer, deadlineMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest<Buffer, Buffer>(
        UPDATE_STATUS,
        identity,
        identity,
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => (err ? reject(err) : resolve(res ?? Buffer.alloc(0))),
      ),
    );
  }

  async run(cmd: WriterRun): Promise<WriterResult> {
    // The rate ramps up linearly over the warm-up (processes and JITs start cold, as no real
    // watcher does), then holds for the window.
    const dueAt = (ms: number): number => {
      if (ms <= 0) return 0;
      if (ms < cmd.warmupMs) return (cmd.rate * ms * ms) / (2 * cmd.warmupMs) / 1000;
      return (cmd.rate * (cmd.warmupMs / 2 + (ms - cmd.warmupMs))) / 1000;
    };
    /** When write k is due, ms after startAt (the inverse of dueAt). */
    const scheduleOf = (k: number): number => {
      const rampWrites = (cmd.rate * cmd.warmupMs) / 2 / 1000;
      if (k < rampWrites) return Math.sqrt((2 * cmd.warmupMs * k * 1000) / cmd.rate);
      return cmd.warmupMs + ((k - rampWrites) * 1000) / cmd.rate;
    };
    let total = Math.floor(dueAt(cmd.warmupMs + cmd.durationMs));
    const planned = total;
    const seqFrom = this.nextSeq;
    if (seqFrom + total > this.init.maxSeq) throw new Error(`writes would pass maxSeq ${this.init.maxSeq}`);
    const nodeOf = new Int32Array(total).fill(-1);
    const windowStart = cmd.startAt + cmd.warmupMs;
    const windowEnd = windowStart + cmd.durationMs;
    const hist = new Histogram();
    const errors: Record<string, number> = {};
    const samples: string[] = [];
    let issued = 0;
    let acked = 0;
    let inFlight = 0;
    let windowWrites = 0;
    let maxLagMs = 0;
    let lateWrites = 0;
    let errorCount = 0;
    const addError = (kind: string, detail: string): void => {
      errors[kind] = (errors[kind] ?? 0) + 1;
      errorCount++;
      if (samples.length < 5) samples.push(`${kind}: ${detail}`);
    };

    await sleep(cmd.startAt - epochNow());
    return new Promise<WriterResult>((resolve) => {
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearInterval(ticker);
        clearTimeout(watchdog);
        if (inFlight > 0) addError("STUCK", `${inFlight} writes unanswered ${cmd.deadlineMs + 3000} ms after the last was issued`);
        if (issued < planned) addError("BEHIND", `the writer fell so far behind that ${planned - issued} writes were never issued`);
        this.nextSeq = seqFrom + planned;
        resolve({
          type: "ran",
          phase: cmd.phase,
          seqFrom,
          seqTo: seqFrom + issued,
          nodeOf: nodeOf.slice(0, issued),
          acked,
          hist: wire(hist),
          windowWrites,
          windowMs: cmd.durationMs,
          maxLagMs,
          lateWrites,
          errors,
          samples,
        });
      };
      // Writes are issued until 1 s after the window at the latest; each has a deadline.
      const watchdog = setTimeout(finish, windowEnd - epochNow() + 1000 + cmd.deadlineMs + 3000);
      const issue = (): void => {
        const seq = seqFrom + issued;
        const node = Math.floor(this.random() * this.init.nodeCount);
        nodeOf[issued] = node;
        issued++;
        inFlight++;
        const name = scaleNodeName(node);
        const t0 = epochNow();
        const inWindow = t0 >= windowStart && t0 < windowEnd;
        if (inWindow) windowWrites++;
        const req = this.request(node, name, stamp(seq, t0), new Date(t0));
        this.updateStatus(req, cmd.deadlineMs).then(
          (res) => {
            inFlight--;
            const answered = res.length === 0 ? "(nothing)" : seq % VERIFY_EVERY === 0 ? (UpdateStatusResponse.decode(res).node?.metadata?.name ?? "?") : name;
            if (answered !== name) addError("VERIFY", `updated ${name}, answered ${answered}`);
            else {
              acked++;
              if (inWindow) hist.record((epochNow() - t0) * 1000);
            }
            if (issued === total && inFlight === 0) finish();
          },
          (err: unknown) => {
            inFlight--;
            const code = (err as { code?: number }).code;
            addError(code !== undefined ? (grpc.status[code] ?? String(code)) : "error", err instanceof Error ? err.message : String(err));
            if (issued === total && inFlight === 0) finish();
          },
        );
      };
      const tick = (): void => {
        const now = epochNow();
        if (now > windowEnd + 1000 && issued < total) total = issued; // hopelessly behind: stop (reported)
        const due = Math.min(total, Math.floor(dueAt(now - cmd.startAt)));
        while (issued < due && errorCount < 100 && inFlight < cmd.maxInFlight) {
          const scheduled = cmd.startAt + scheduleOf(issued);
          const lag = now - scheduled;
          if (scheduled >= windowStart) {
            if (lag > LATE_MS) lateWrites++;
            maxLagMs = Math.max(maxLagMs, lag);
          }
          issue();
        }
        if (errorCount >= 100 || (issued === total && inFlight === 0)) finish();
      };
      const ticker = setInterval(tick, 1);
      tick();
    });
  }

  close(): void {
    this.client.close();
  }
}

// ---------------------------------------------------------------------------------------

const role = process.argv[2];
if (role === "watcher") {
  let watchers: Watchers | undefined;
  serveParent<ToWatcher, FromWatcher>(
    "fanout-worker watcher",
    async (msg) => {
      switch (msg.type) {
        case "init":
          watchers = new Watchers(msg);
          return { type: "ready", index: msg.index };
        case "open":
          return {
            type: "opened",
            which: msg.which,
            count: msg.which === "all" ? await watchers!.openAll(msg.flowWindow) : await watchers!.openPinned(msg.flowWindow),
          };
        case "closeAll":
          watchers!.closeAll();
          return { type: "closed" };
        case "window":
          watchers!.setWindow(msg.phase, msg.startAt, msg.endAt);
          return { type: "windowSet" };
        case "report":
          return watchers!.report();
        case "status":
          return watchers!.status();
      }
    },
    () => watchers?.close(),
  );
} else if (role === "writer") {
  let writer: Writer | undefined;
  serveParent<ToWriter, FromWriter>(
    "fanout-worker writer",
    async (msg) => {
      switch (msg.type) {
        case "init":
          writer = new Writer(msg);
          await writer.ready();
          return { type: "ready" };
        case "run":
          return writer!.run(msg);
      }
    },
    () => writer?.close(),
  );
} else {
  process.stderr.write("usage: fanout-worker watcher|writer (spawned by bench/watch-fanout.js)\n");
  process.exit(2);
}
