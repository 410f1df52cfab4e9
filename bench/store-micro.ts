/**
 * Store micro-benchmark: renew-like transactions straight against SqliteStore, no gRPC. Each of
 * C concurrent callers loops over its own keys: get the key, then a compare-and-swap put of a
 * new 230-byte value at the modRevision it read (what a Lease renewal does). One live watch on
 * everything consumes the events, as the server's watch cache does. `--work-us W` has each
 * renewal first spin W µs of CPU on the main thread, standing in for what the server does per
 * renewal besides the store (gRPC, protobuf, registry: ~50 µs in bench/RESULTS.md): with W = 0
 * every caller waits in the same batch, so the main thread idles while a batch commits and the
 * next cannot form; with W > 0 the main thread is the bottleneck, as in the server.
 *
 * Reported per window: durable txns/s, CPU of this process's main thread per txn (µs, from
 * /proc/self/task/PID/stat: the JS thread that also serves gRPC in the server), CPU of the whole
 * process per txn, group commits/s and txns per commit. Two writers side by side, taking turns
 * within each repeat: `thread` (the default: commits in SqliteStore's writer thread) and
 * `inline` (`writerThread: false`: commits on the main thread, as before the thread existed).
 *
 *   npm run build && node dist/bench/store-micro.js [--concurrency 64,256] [--seconds 3] [--repeats 3] [--writers thread,inline] [--work-us 0,50]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SqliteStore } from "../src/store/sqlite.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
}

const TICK_MS = 1000 / 100; // USER_HZ on Linux

/** utime + stime of one task (thread) or of the whole process, ms. */
function cpuMs(stat: string): number {
  const text = fs.readFileSync(stat, "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

const mainThreadCpu = (): number => cpuMs(`/proc/self/task/${process.pid}/stat`);
const processCpu = (): number => cpuMs("/proc/self/stat");

type WriterMode = "thread" | "inline";

interface Window {
  txnsPerSec: number;
  mainUsPerTxn: number;
  processUsPerTxn: number;
  commitsPerSec: number;
  txnsPerCommit: number;
}

const VALUE_BYTES = 230;
const KEYS_PER_CALLER = 8;

async function measure(mode: WriterMode, concurrency: number, workUs: number, seconds: number): Promise<Window> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-store-micro-"));
  let commits = 0;
  let committed = 0;
  const store = await SqliteStore.open({
    dir,
    writerThread: mode === "thread",
    onCommit: (n) => {
      commits++;
      committed += n;
    },
  });
  try {
    const keys = Array.from({ length: concurrency * KEYS_PER_CALLER }, (_, i) => `/registry/leases/kube-node-lease/node-${i}`);
    const value = (i: number): Uint8Array => {
      const v = new Uint8Array(VALUE_BYTES);
      new DataView(v.buffer).setUint32(0, i);
      return v;
    };
    for (let i = 0; i < keys.length; i += 500) {
      await store.txn({ compare: [], ops: keys.slice(i, i + 500).map((key) => ({ type: "put" as const, key, value: value(0) })) });
    }
    let events = 0;
    const watch = store.watch("/registry/", await store.currentRevision(), {
      onEvents: (evs) => (events += evs.length),
      onProgress: () => {},
      onError: (err) => {
        throw err;
      },
    });
    let stop = false;
    let done = 0;
    const caller = async (c: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = keys[c * KEYS_PER_CALLER + (i % KEYS_PER_CALLER)]!;
        spin(workUs);
        const kv = await store.get(key);
        const res = await store.txn({ compare: [{ key, modRevision: kv!.modRevision }], ops: [{ type: "put", key, value: value(i) }] });
        if (!res.succeeded) throw new Error(`renewal of ${key} lost its compare`);
        done++;
      }
    };
    const callers = Array.from({ length: concurrency }, (_, c) => caller(c));
    await new Promise((resolve) => setTimeout(resolve, 500)); // warm-up
    const start = { at: performance.now(), main: mainThreadCpu(), proc: processCpu(), done, commits, committed };
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const end = { at: performance.now(), main: mainThreadCpu(), proc: processCpu(), done, commits, committed };
    stop = true;
    await Promise.all(callers);
    watch.cancel();
    if (events === 0) throw new Error("the watch saw no event");
    const n = end.done - start.done;
    const s = (end.at - start.at) / 1000;
    return {
      txnsPerSec: n / s,
      mainUsPerTxn: ((end.main - start.main) * 1000) / n,
      processUsPerTxn: ((end.proc - start.proc) * 1000) / n,
      commitsPerSec: (end.commits - start.commits) / s,
      txnsPerCommit: (end.committed - start.committed) / (end.commits - start.commits),
    };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Busy the thread for `us` µs. */
function spin(us: number): void {
  if (us <= 0) return;
  const until = performance.now() + us / 1000;
  while (performance.now() < until);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number, digits = 0): string => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const levels = arg("concurrency", "64,256").split(",").map(Number);
  const seconds = Number(arg("seconds", "3"));
  const repeats = Number(arg("repeats", "3"));
  console.log(`store micro-benchmark: ${os.cpus().length} CPUs, Node ${process.version}, ${seconds} s windows, median of ${repeats}`);
  const modes = arg("writers", "thread,inline").split(",") as WriterMode[];
  const works = arg("work-us", "0,50").split(",").map(Number);
  console.log("| writer | concurrency | work µs | txns/s | main-thread µs/txn | process µs/txn | commits/s | txns/commit |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const work of works) for (const c of levels) {
    const runs = new Map<WriterMode, Window[]>(modes.map((m) => [m, []]));
    for (let r = 0; r < repeats; r++) {
      for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) runs.get(mode)!.push(await measure(mode, c, work, seconds));
    }
    for (const [mode, windows] of runs) {
      const m = (f: (w: Window) => number): number => median(windows.map(f));
      console.log(
        `| ${mode} | ${c} | ${work} | ${fmt(m((w) => w.txnsPerSec))} | ${fmt(m((w) => w.mainUsPerTxn), 1)} | ${fmt(m((w) => w.processUsPerTxn), 1)} | ${fmt(m((w) => w.commitsPerSec))} | ${fmt(m((w) => w.txnsPerCommit), 1)} |`,
      );
    }
  }
}

await main();
