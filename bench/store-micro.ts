/**
 * `node dist/bench/store-micro.js`: renew-like transactions straight against SqliteStore, no
 * gRPC. Each of C concurrent callers loops over its own keys: get the key, then a
 * compare-and-swap put of a new 230-byte value at the modRevision it read (what a Lease renewal
 * does). One live watch on everything consumes the events, as the server's watch cache does.
 * `--work-us W` has each renewal first spin W µs of CPU on the main thread, standing in for what
 * the server does per renewal besides the store (gRPC, protobuf, registry: ~50 µs): with W = 0
 * every caller waits in the same batch, so the main thread idles while a batch commits and the
 * next cannot form; with W > 0 the main thread is the bottleneck, as in the server.
 *
 * Reported per window: durable txns/s, CPU of the main thread per txn (the JS thread that also
 * serves gRPC in the server), CPU of the whole process per txn, group commits/s and txns per
 * commit. Two writers side by side, taking turns within each repeat: `thread` (the default:
 * commits in SqliteStore's writer thread) and `inline` (`writerThread: false`: on the main
 * thread, as before the thread existed). Flags (or env STORE_<NAME>): --help.
 */
import fs from "node:fs";
import os from "node:os";
import { SqliteStore } from "../src/store/sqlite.js";
import { Flags } from "./flags.js";
import { runMain, sleep, tempDir } from "./harness.js";
import { procCpuMs } from "./proc.js";
import { median } from "./report.js";

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

/** Busy the thread for `us` µs. */
function spin(us: number): void {
  const until = performance.now() + us / 1000;
  while (us > 0 && performance.now() < until);
}

async function measure(mode: WriterMode, concurrency: number, workUs: number, seconds: number): Promise<Window> {
  const dir = tempDir("nodeplane-store-micro-");
  let commits = 0;
  let committed = 0;
  const store = await SqliteStore.open({ dir, writerThread: mode === "thread", onCommit: (n) => ((commits += 1), (committed += n)) });
  try {
    const keys = Array.from({ length: concurrency * KEYS_PER_CALLER }, (_, i) => `/registry/leases/kube-node-lease/node-${i}`);
    const value = (i: number): Uint8Array => {
      const v = new Uint8Array(VALUE_BYTES);
      new DataView(v.buffer).setUint32(0, i);
      return v;
    };
    for (let i = 0; i < keys.length; i += 500) await store.txn({ compare: [], ops: keys.slice(i, i + 500).map((key) => ({ type: "put" as const, key, value: value(0) })) });
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
    await sleep(500); // warm-up
    const read = () => {
      const [main, proc] = [procCpuMs(process.pid, process.pid) ?? Number.NaN, procCpuMs(process.pid) ?? Number.NaN];
      return { at: performance.now(), main, proc, done, commits, committed };
    };
    const start = read();
    await sleep(seconds * 1000);
    const end = read();
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

const fmt = (x: number, digits = 0): string => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const f = new Flags("store-micro.js", "STORE");
  const levels = f.list("concurrency", "64,256", "concurrent callers").map(Number);
  const seconds = f.num("seconds", 3, 0.1, 600, "measured seconds per window", false);
  const repeats = f.num("repeats", 3, 1, 100, "windows per (writer, level, work); medians are reported");
  const modes = f.list("writers", "thread,inline", "writer modes", ["thread", "inline"]) as WriterMode[];
  const works = f.list("work-us", "0,50", "µs of CPU spun per renewal before it").map(Number);
  f.done();
  console.log(`store micro-benchmark: ${os.cpus().length} CPUs, Node ${process.version}, ${seconds} s windows, median of ${repeats}`);
  console.log("| writer | concurrency | work µs | txns/s | main-thread µs/txn | process µs/txn | commits/s | txns/commit |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const work of works) {
    for (const c of levels) {
      const runs = new Map<WriterMode, Window[]>(modes.map((m) => [m, []]));
      for (let r = 0; r < repeats; r++) for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) runs.get(mode)!.push(await measure(mode, c, work, seconds));
      for (const [mode, windows] of runs) {
        const m = (g: (w: Window) => number): number => median(windows.map(g));
        console.log(
          `| ${mode} | ${c} | ${work} | ${fmt(m((w) => w.txnsPerSec))} | ${fmt(m((w) => w.mainUsPerTxn), 1)} | ${fmt(m((w) => w.processUsPerTxn), 1)} | ${fmt(m((w) => w.commitsPerSec))} | ${fmt(m((w) => w.txnsPerCommit), 1)} |`,
        );
      }
    }
  }
}

runMain("store-micro", main);
