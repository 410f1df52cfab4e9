/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): sampled time by area (grpc-js, node's
 * http2/net internals, protobuf codecs, SQLite, nodeplane's own modules, GC, idle…) and the
 * functions with the most self time. Used by `npm run bench -- --cpu-prof`.
 */
import fs from "node:fs";
import { pathToFileURL } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const AREAS: Array<[RegExp, string]> = [
  [/node_modules\/@grpc\/grpc-js\//, "grpc-js"],
  [/node_modules\/@bufbuild\/protobuf\//, "protobuf wire (@bufbuild)"],
  [/\/src\/gen\//, "generated codecs (src/gen)"],
  [/node_modules\/better-sqlite3\//, "better-sqlite3 + SQLite native (incl. fsync)"],
  [/node_modules\/(pino|prom-client|sonic-boom|thread-stream)/, "logging/metrics libs"],
  [/\/src\/store\//, "nodeplane store (src/store)"],
  [/\/src\/registry\//, "nodeplane registry (src/registry)"],
  [/\/src\/server\//, "nodeplane server (src/server)"],
  [/\/src\/watch\//, "nodeplane watch (src/watch)"],
  [/\/src\//, "nodeplane other (src)"],
  [/\/bench\//, "bench code"],
  [/^node:internal\/http2|^node:http2/, "node http2"],
  [/^node:internal\/(stream|streams)|^node:stream/, "node streams"],
  [/^node:(internal\/)?(net|tcp|dns)/, "node net"],
  [/^node:/, "node other internals"],
];

function areaOf(frame: CallFrame): string {
  const fn = frame.functionName;
  if (fn === "(idle)") return "(idle: waiting for I/O)";
  if (fn === "(garbage collector)") return "(garbage collector)";
  if (fn === "(program)") return "(program: native, outside JS)";
  if (fn === "(root)") return "(root)";
  const url = frame.url;
  for (const [re, name] of AREAS) if (re.test(url)) return name;
  if (url === "") return `native/builtin`;
  return "other";
}

function label(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, "").replace(/^.*\/(node_modules|dist)\//, "$1/");
  return `${frame.functionName || "(anonymous)"} ${url ? `${url}:${frame.lineNumber + 1}` : ""}`.trim();
}

export function summarizeProfile(file: string, top = 15): string {
  const prof = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);
  const idleUs = [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)").reduce((a, [, v]) => a + v, 0);
  const busyUs = totalUs - idleUs;

  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    const area = areaOf(frame);
    areas.set(area, (areas.get(area) ?? 0) + us);
    if (frame.functionName !== "(idle)") fns.set(label(frame), (fns.get(label(frame)) ?? 0) + us);
  }

  // Inclusive time of nodeplane's own functions (a function counted once per stack).
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      if (!/\/src\/(store|registry|server|watch)\//.test(frame.url)) continue;
      const key = label(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }

  const pct = (us: number, of: number): string => `${((100 * us) / of).toFixed(1).padStart(5)}%`;
  const lines: string[] = [];
  lines.push(`profile ${file}`);
  lines.push(`  sampled ${(totalUs / 1e6).toFixed(1)} s, of which idle ${pct(idleUs, totalUs)}`);
  lines.push(`  self time by area (share of non-idle time):`);
  for (const [area, us] of [...areas.entries()].sort((a, b) => b[1] - a[1])) {
    if (area.startsWith("(idle")) continue;
    lines.push(`    ${pct(us, busyUs)}  ${area}`);
  }
  lines.push(`  top ${top} functions by self time (share of non-idle time):`);
  for (const [fn, us] of [...fns.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${pct(us, busyUs)}  ${fn}`);
  if (inclusive.size > 0) {
    lines.push(`  nodeplane functions by inclusive time (share of non-idle time):`);
    for (const [fn, us] of [...inclusive.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${pct(us, busyUs)}  ${fn}`);
  }
  return lines.join("\n");
}

// Standalone: node dist/bench/profile-summary.js FILE.cpuprofile
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: profile-summary FILE.cpuprofile\n");
    process.exit(2);
  }
  process.stdout.write(`${summarizeProfile(file)}\n`);
}
