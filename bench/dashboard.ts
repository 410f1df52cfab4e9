/**
 * `node dist/bench/dashboard.js`: the dashboard with a large fleet, in headless Chromium
 * (Debian's /usr/bin/chromium driven by playwright-core), against an in-process server whose
 * nodes are written through its registry (this measures the page and its feed, not gRPC).
 *
 *   1. fleet: --nodes nodes registered (10 zones, realistic labels and status); from then on
 *      every node renews its Lease every --interval s (10,000 nodes at 10 s: 1,000 renewals/s),
 *      as a fleet does while someone opens the page.
 *   2. first render: the page opened cold --loads times (a new browser context each) with 100
 *      nodes (baseline: a fresh server, same run) and with --nodes: from navigation to the first
 *      complete render (every cell drawn, counts, table), split into page load, snapshot
 *      download and parse-and-draw; snapshot size raw and gzipped.
 *   3. steady updates, --window s: the renewals plus --flips nodes/s flipping Ready True↔False.
 *      In the page: frames and rows applied per second, render time p50/p99/max, long tasks,
 *      main-thread busy share (Chromium's TaskDuration), and the delay from a flip's commit
 *      to the render that shows it (p50/p99). Rows written vs rows applied says whether the
 *      page keeps up.
 *   4. burst, --burst-window s: renewals at --burst /s: the same figures under five times the load.
 *
 * Flags: --help. --quick: a smoke run of well under a minute (2,000 nodes, 1 load, 5 s and 3 s
 * windows). Part of `npm run bench` (bench/suite.ts); its targets: the first complete render at
 * --nodes within 5 s, and with the page open a render p99 under 100 ms (the page stays
 * responsive) and a flip shown within 1 s (p99; the feed cuts a frame every 250 ms).
 * Local and bounded: the browser, the server and its temp data dir go away on exit or error.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { Node, type NodeStatus } from "../src/gen/nodeplane/v1/node.js";
import { NodeplaneServer } from "../src/server/server.js";
import { Flags } from "./flags.js";
import { sleep } from "./harness.js";
import { finish, fmtRatio, verdict } from "./report.js";

const f = new Flags("dashboard.js", "DASHBOARD");
const SIZES = {
  nodes: f.num("nodes", f.quick ? 2000 : 10_000, 100, 200_000, "nodes in the big fleet"),
  loads: f.num("loads", f.quick ? 1 : 3, 1, 20, "cold loads per fleet size; medians are reported"),
  interval: f.num("interval", 10, 1, 600, "each node renews its Lease every S s", false),
  flips: f.num("flips", 50, 0, 10_000, "nodes per second flipping Ready True↔False"),
  window: f.num("window", f.quick ? 5 : 20, 1, 600, "steady-update window, s", false),
  burst: f.num("burst", 5000, 1, 100_000, "renewals per second in the burst"),
  "burst-window": f.num("burst-window", f.quick ? 3 : 10, 1, 600, "burst window, s", false),
};
const OUT = f.out("dashboard");
f.done();
type NumberFlag = keyof typeof SIZES;
const num = (name: NumberFlag): number => SIZES[name];
const NODES = num("nodes");
const ZONES = 10;

interface PageStats {
  renders: number;
  renderMs: number[];
  arrivals: { rev: number; at: number }[];
  paints: { rev: number; at: number }[];
  frames: number;
  changes: number;
  longtasks: number[];
  heapMiB: number;
  firstParts: Record<string, number>;
}

/** Read in the page (a string: the bench is compiled without the DOM library). */
const READ_STATS = `(() => {
  const d = window.nodeplaneDashboard;
  return { renders: d.stats.renders, renderMs: [...d.stats.renderMs], arrivals: [...d.stats.arrivals], paints: [...d.stats.paints],
    frames: d.fleet.stats.frames, changes: d.fleet.stats.changes, longtasks: [...window.__longtasks], firstParts: d.stats.firstParts,
    heapMiB: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : NaN };
})()`;
const LONGTASKS = `window.__longtasks = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longtasks.push(e.duration); }).observe({ type: "longtask", buffered: true });`;
const FIRST_RENDER = `(() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const snap = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/dashboard/v1/snapshot"));
  const first = performance.getEntriesByName("nodeplane:first-render")[0];
  return { loaded: nav.domContentLoadedEventEnd, snapshotStart: snap ? snap.startTime : NaN, snapshotEnd: snap ? snap.responseEnd : NaN, first: first.startTime };
})()`;

function realisticNode(i: number): Node {
  const name = `node-${String(i).padStart(6, "0")}`;
  const zone = `zone-${i % ZONES}`;
  return Node.fromPartial({
    metadata: {
      name,
      labels: {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/region": "eu-west",
        "topology.kubernetes.io/zone": zone,
        "node.kubernetes.io/instance-type": i % 7 === 0 ? "m6i.4xlarge" : "m6i.2xlarge",
        ...(i % 50 === 0 ? { "node-role.kubernetes.io/control-plane": "" } : { "node-role.kubernetes.io/worker": "" }),
      },
    },
    spec: { providerId: `inventory://eu-west/${zone}/${name}`, podCidrs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`] },
    status: status(i, "True"),
  });
}

function status(i: number, ready: string): NodeStatus {
  return Node.fromPartial({
    status: {
      capacity: { cpu: "8", memory: "32Gi", pods: "110", "ephemeral-storage": "200Gi" },
      allocatable: { cpu: "7500m", memory: "30Gi", pods: "110", "ephemeral-storage": "180Gi" },
      addresses: [
        { type: "InternalIP", address: `10.1.${(i >> 8) & 255}.${i & 255}` },
        { type: "Hostname", address: `node-${i}` },
      ],
      conditions: [
        { type: "Ready", status: ready, reason: ready === "True" ? "AgentReady" : "AgentNotReady", message: ready === "True" ? "agent is posting ready status" : "container runtime is down" },
        { type: "MemoryPressure", status: "False", reason: "AgentHasSufficientMemory" },
        { type: "DiskPressure", status: "False", reason: "AgentHasNoDiskPressure" },
        { type: "PIDPressure", status: "False", reason: "AgentHasSufficientPID" },
      ],
      nodeInfo: { kernelVersion: "6.1.0-28-amd64", osImage: "Debian GNU/Linux 12 (bookworm)", operatingSystem: "linux", architecture: "amd64", agentVersion: "nodeplane-agent/0.1.0" },
    },
  }).status!;
}

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const median = (xs: number[]): number => pct(xs, 50);
const f0 = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString("en") : "—");
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "—");

/** A server over a temp dir, `count` nodes registered through its registry. */
async function fleet(count: number): Promise<{ server: NodeplaneServer; url: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "nodeplane-bench-dashboard-"));
  // The lifecycle controller runs, with a grace period longer than registering the fleet takes
  // before the renewals start (the flips still bring its NoSchedule taints and events).
  const server = await NodeplaneServer.start({
    listen: "127.0.0.1:0",
    httpListen: "127.0.0.1:0",
    dataDir: dir,
    logLevel: "silent",
    nodeLifecycle: { monitorGracePeriodMs: 180_000 },
  });
  await server.whenReady();
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) => server.registry.register(realisticNode(i + j))));
  }
  return {
    server,
    url: `http://127.0.0.1:${server.httpPort}/`,
    close: async () => {
      await server.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Renew every node's Lease in turn at `perSecond`, until stopped; counts renewals written. */
function renewals(server: NodeplaneServer, count: number, perSecond: () => number): { stop: () => void; written: () => number } {
  let next = 0;
  let written = 0;
  let carry = 0;
  const timer = setInterval(() => {
    carry += perSecond() / 20;
    const n = Math.floor(carry);
    carry -= n;
    for (let k = 0; k < n; k++) {
      const i = next++ % count;
      void server.registry.renewLease(`node-${String(i).padStart(6, "0")}`, "", 0).then(() => written++, () => undefined);
    }
  }, 50);
  return { stop: () => clearInterval(timer), written: () => written };
}

/** Flip `perSecond` nodes' Ready status; remembers each commit's revision and time. */
function flips(server: NodeplaneServer, count: number, perSecond: number): { stop: () => void; commits: { rev: number; at: number }[] } {
  const commits: { rev: number; at: number }[] = [];
  let next = 0;
  const timer = setInterval(() => {
    for (let k = 0; k < perSecond / 10; k++) {
      const i = (next * 7919) % count;
      const ready = Math.floor(next / count) % 2 === 0 ? "False" : "True";
      next++;
      void server.registry.updateStatus(`node-${String(i).padStart(6, "0")}`, status(i, ready), "").then(
        (n) => commits.push({ rev: Number(n.metadata!.resourceVersion), at: Date.now() }),
        () => undefined,
      );
    }
  }, 100);
  return { stop: () => clearInterval(timer), commits };
}

async function openPage(browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  await context.addInitScript({ content: LONGTASKS });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]", { timeout: 180_000 });
  return page;
}

interface FirstRender {
  first: number;
  loaded: number;
  snapshot: number;
  draw: number;
  /** The first complete render itself (script: picture, table, events), inside `draw`. */
  render: number;
  heapMiB: number;
}

async function firstRenders(browser: Browser, url: string, loads: number): Promise<FirstRender> {
  const runs: FirstRender[] = [];
  for (let i = 0; i < loads; i++) {
    const page = await openPage(browser, url);
    const t = (await page.evaluate(FIRST_RENDER)) as { loaded: number; snapshotStart: number; snapshotEnd: number; first: number };
    const s = (await page.evaluate(READ_STATS)) as PageStats;
    const render = Object.values(s.firstParts).reduce((a, b) => a + b, 0);
    runs.push({ first: t.first, loaded: t.loaded, snapshot: t.snapshotEnd - t.snapshotStart, draw: t.first - t.snapshotEnd, render, heapMiB: s.heapMiB });
    await page.context().close();
  }
  const by = (k: keyof (typeof runs)[number]): number => median(runs.map((r) => r[k]));
  return { first: by("first"), loaded: by("loaded"), snapshot: by("snapshot"), draw: by("draw"), render: by("render"), heapMiB: by("heapMiB") };
}

interface Window {
  seconds: number;
  written: number;
  frames: number;
  changes: number;
  renders: number;
  renderP50: number;
  renderP99: number;
  renderMax: number;
  longtasks: number;
  longestTask: number;
  busy: number;
  delayP50: number;
  delayP99: number;
}

/** Measure the open page for `seconds` while the drivers write. */
async function measure(page: Page, seconds: number, written: () => number, commits: { rev: number; at: number }[]): Promise<Window> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const busyOf = async (): Promise<number> => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration")?.value ?? NaN;
  const before = (await page.evaluate(READ_STATS)) as PageStats;
  const busy0 = await busyOf();
  const w0 = written();
  const c0 = commits.length;
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const after = (await page.evaluate(READ_STATS)) as PageStats;
  const busy = (await busyOf()) - busy0;
  const elapsed = (Date.now() - t0) / 1000;
  const renderMs = after.renderMs.slice(-(after.renders - before.renders));
  // Each flip committed in the window, settled (a render at or past its revision exists).
  const delays: number[] = [];
  for (const c of commits.slice(c0)) {
    const shown = after.paints.find((p) => p.rev >= c.rev);
    if (shown) delays.push(shown.at - c.at);
  }
  const tasks = after.longtasks.slice(before.longtasks.length);
  return {
    seconds: elapsed,
    written: (written() - w0) / elapsed,
    frames: (after.frames - before.frames) / elapsed,
    changes: (after.changes - before.changes) / elapsed,
    renders: (after.renders - before.renders) / elapsed,
    renderP50: pct(renderMs, 50),
    renderP99: pct(renderMs, 99),
    renderMax: Math.max(...renderMs),
    longtasks: tasks.length,
    longestTask: tasks.length ? Math.max(...tasks) : 0,
    busy: busy / elapsed,
    delayP50: pct(delays, 50),
    delayP99: pct(delays, 99),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadavg()[0]!;
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const cleanup: (() => Promise<void> | void)[] = [() => browser.close()];
  try {
    // Baseline: the same page with a small fleet, same run.
    const small = await fleet(100);
    cleanup.push(small.close);
    const smallRender = await firstRenders(browser, small.url, num("loads"));
    await cleanup.pop()!();

    console.error(`registering ${NODES} nodes…`);
    const big = await fleet(NODES);
    cleanup.push(big.close);
    const rate = { perSecond: NODES / num("interval") };
    const renew = renewals(big.server, NODES, () => rate.perSecond);
    cleanup.push(renew.stop);
    const snapshot = await fetch(`${big.url}dashboard/v1/snapshot`, { headers: { "accept-encoding": "identity" } }).then((r) => r.arrayBuffer());
    const gzipped = await fetch(`${big.url}dashboard/v1/snapshot`, { headers: { "accept-encoding": "gzip" } }).then((r) => Number(r.headers.get("content-length")));
    const bigRender = await firstRenders(browser, big.url, num("loads"));

    console.error("steady updates…");
    const page = await openPage(browser, big.url);
    const flip = flips(big.server, NODES, num("flips"));
    cleanup.push(flip.stop);
    const steady = await measure(page, num("window"), renew.written, flip.commits);
    console.error("burst…");
    rate.perSecond = num("burst");
    const burst = await measure(page, num("burst-window"), renew.written, flip.commits);

    const rows = [
      `# Dashboard in headless Chromium (${new Date().toISOString().slice(0, 10)}, ${NODES.toLocaleString("en")} nodes, ${Math.round((Date.now() - started) / 1000)} s)`,
      "",
      "| first render (median of " + num("loads") + " cold loads) | 100 nodes (baseline) | " + NODES.toLocaleString("en") + " nodes |",
      "| --- | --- | --- |",
      `| navigation → first complete render | ${f0(smallRender.first)} ms | ${f0(bigRender.first)} ms |`,
      `| … page and scripts loaded | ${f0(smallRender.loaded)} ms | ${f0(bigRender.loaded)} ms |`,
      `| … snapshot download | ${f0(smallRender.snapshot)} ms | ${f0(bigRender.snapshot)} ms |`,
      `| … parse, model, first draw | ${f0(smallRender.draw)} ms | ${f0(bigRender.draw)} ms |`,
      `| … of which the first render's script (picture, table, events) | ${f0(smallRender.render)} ms | ${f0(bigRender.render)} ms |`,
      `| page JS heap | ${f1(smallRender.heapMiB)} MiB | ${f1(bigRender.heapMiB)} MiB |`,
      `| snapshot size (raw / gzip) | | ${f0(snapshot.byteLength / 1024)} KiB / ${f0(gzipped / 1024)} KiB |`,
      "",
      `| updates, page open | steady: ${f0(NODES / num("interval"))} renewals/s + ${num("flips")} flips/s, ${num("window")} s | burst: ${f0(num("burst"))} renewals/s + flips, ${num("burst-window")} s |`,
      "| --- | --- | --- |",
      `| Lease renewals written /s | ${f0(steady.written)} | ${f0(burst.written)} |`,
      `| rows applied by the page /s | ${f0(steady.changes)} | ${f0(burst.changes)} |`,
      `| frames received /s | ${f1(steady.frames)} | ${f1(burst.frames)} |`,
      `| renders /s | ${f1(steady.renders)} | ${f1(burst.renders)} |`,
      `| render time p50 / p99 / max | ${f1(steady.renderP50)} / ${f1(steady.renderP99)} / ${f1(steady.renderMax)} ms | ${f1(burst.renderP50)} / ${f1(burst.renderP99)} / ${f1(burst.renderMax)} ms |`,
      `| long tasks (> 50 ms), longest | ${steady.longtasks}, ${f0(steady.longestTask)} ms | ${burst.longtasks}, ${f0(burst.longestTask)} ms |`,
      `| page main thread busy | ${f0(steady.busy * 100)} % | ${f0(burst.busy * 100)} % |`,
      `| flip commit → render showing it, p50 / p99 | ${f0(steady.delayP50)} / ${f0(steady.delayP99)} ms | ${f0(burst.delayP50)} / ${f0(burst.delayP99)} ms |`,
      "",
      `Server in process (writes through its registry; its feed cuts a frame every 250 ms); Chromium headless on the same shared machine (${availableParallelism()} cores, load average ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end).`,
    ];
    const text = rows.join("\n") + "\n";
    process.stdout.write(text);
    const at = `${NODES.toLocaleString("en")} nodes`;
    finish({
      name: "dashboard",
      doc: text,
      out: OUT,
      rows: [
        {
          scenario: `Dashboard: navigation → first complete render, ${at} (headless Chromium, median of ${num("loads")})`,
          result: `${f0(bigRender.first)} ms`,
          baseline: `100 nodes: ${f0(smallRender.first)} ms (${fmtRatio(bigRender.first, smallRender.first)})`,
          target: "≤ 5,000 ms at 10,000 nodes",
          verdict: NODES >= 10_000 ? verdict(bigRender.first <= 5000) : "–",
        },
        {
          scenario: `Dashboard open during ${f0(NODES / num("interval"))} renewals/s + ${num("flips")} flips/s, ${at}`,
          result: `render p99 ${f1(steady.renderP99)} ms; flip shown p99 ${f0(steady.delayP99)} ms; main thread ${f0(steady.busy * 100)} % busy`,
          baseline: `burst of ${f0(num("burst"))} renewals/s: render p99 ${f1(burst.renderP99)} ms, flip shown p99 ${f0(burst.delayP99)} ms`,
          target: "render p99 ≤ 100 ms, flip shown p99 ≤ 1,000 ms",
          verdict: NODES >= 10_000 ? verdict(steady.renderP99 <= 100 && steady.delayP99 <= 1000) : "–",
        },
      ],
      failures: [],
    });
  } finally {
    for (const stop of cleanup.reverse()) await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
