/**
 * Does one identity's flood starve another? A real `nodeplane serve --tls` with a token file;
 * a "victim" identity makes a steady --victim-rate GetNode/s (10, under the limit) while a "flooder"
 * identity (another token, its own thread) sends ListNodes with 64 calls in flight as fast as it can. Three phases, same
 * run: the victim alone; with the flood under a per-identity limit (--limit requests/s, bursts
 * of twice that); with the flood and no per-identity limit (the server restarted with
 * --max-requests-per-second-per-identity 0). Prints the victim's latency and errors and what
 * the flooder got, as a Markdown table. Not part of the suite; numbers, not assertions.
 *
 *   npm run build && node dist/bench/auth-flood.js [--seconds 10] [--in-flight 64] [--limit 20] [--victim-rate 10]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { clientOptions, silenceIpServernameWarning, tlsCredentials } from "../src/auth/client-credentials.js";
import { readKubeconfig } from "../src/auth/kubeconfig.js";
import { NodeClient } from "../src/client/client.js";
import { Flags } from "./flags.js";
import { runMain, type Served, spawnNodeplane, stopServer, tempDir } from "./harness.js";
import { fmtInt } from "./report.js";
import { Histogram } from "./tally.js";

const flags = new Flags("auth-flood.js", "AUTH_FLOOD");
const SECONDS = flags.num("seconds", 10, 1, 600, "measured seconds per phase");
const IN_FLIGHT = flags.num("in-flight", 64, 1, 1024, "the flooder's calls in flight");
/** The per-identity rate of phase 2: low enough that a flood on a busy 2-core machine passes it. */
const LIMIT = flags.num("limit", 20, 1, 100_000, "per-identity requests/s of phase 2");
/** The victim's calls per second: under the limit, as a well-behaved client is. */
const VICTIM_RATE = flags.num("victim-rate", 10, 1, 10_000, "the victim's GetNode/s");
flags.done();
if (VICTIM_RATE >= LIMIT) throw new Error(`--victim-rate ${VICTIM_RATE} must be under --limit ${LIMIT}: the victim is the client that behaves`);

interface Row {
  phase: string;
  victim: { sent: number; ok: number; failed: number; p50: number; p99: number; max: number };
  flood?: { ok: number; limited: number; failed: number };
}

async function victim(address: string, ca: string, ms: number): Promise<Row["victim"]> {
  const client = new NodeClient(address, { credentials: tlsCredentials({ ca }), token: "victim-token-0123456789" });
  const hist = new Histogram();
  let sent = 0;
  let ok = 0;
  let failed = 0;
  const calls: Promise<void>[] = [];
  const start = Date.now();
  for (let i = 0; Date.now() - start < ms; i++) {
    const due = start + (i * 1000) / VICTIM_RATE;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const t0 = performance.now();
    sent++;
    calls.push(
      client.getNode("bench-node-0").then(
        () => {
          ok++;
          hist.record((performance.now() - t0) * 1000);
        },
        () => void failed++,
      ),
    );
  }
  await Promise.all(calls);
  client.close();
  return { sent, ok, failed, p50: hist.quantileUs(0.5) / 1000, p99: hist.quantileUs(0.99) / 1000, max: hist.maxUs / 1000 };
}

function flood(address: string, ca: string, ms: number): Promise<NonNullable<Row["flood"]>> {
  const worker = new Worker(new URL("./auth-flood-worker.js", import.meta.url), {
    workerData: { address, ca, token: "flooder-token-0123456789", inFlight: IN_FLIGHT, ms },
  });
  return new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
}

async function phase(name: string, server: Served, ca: string, withFlood: boolean): Promise<Row> {
  const address = `127.0.0.1:${server.port}`;
  const ms = SECONDS * 1000;
  const [v, f] = await Promise.all([victim(address, ca, ms), withFlood ? flood(address, ca, ms) : Promise.resolve(undefined)]);
  return { phase: name, victim: v, flood: f };
}

async function main(): Promise<void> {
  silenceIpServernameWarning();
  const dir = tempDir("nodeplane-auth-flood-");
  const tokens = path.join(dir, "tokens.csv");
  fs.writeFileSync(tokens, "victim-token-0123456789,victim,1,nodeplane:viewers\nflooder-token-0123456789,flooder,2,nodeplane:viewers\n");
  const start = (extra: string[]): Promise<Served> =>
    spawnNodeplane({
      dataDir: path.join(dir, "data"),
      args: ["--tls", "--write-kubeconfig", "", "--token-auth-file", tokens, "--audit-log-path", path.join(dir, "audit.log"), ...extra],
    });
  let server = await start(["--max-requests-per-second-per-identity", String(LIMIT), "--max-request-burst-per-identity", String(2 * LIMIT)]);
  const admin = readKubeconfig(path.join(dir, "data", "pki", "admin.kubeconfig"));
  const ca = admin.ca!;
  const operator = new NodeClient(`127.0.0.1:${server.port}`, clientOptions(admin));
  for (let i = 0; i < 20; i++) await operator.register({ metadata: { name: `bench-node-${i}` } });
  operator.close();

  const rows: Row[] = [];
  rows.push(await phase("victim alone", server, ca, false));
  rows.push(await phase(`victim + flood, per-identity limit ${LIMIT}/s (burst ${2 * LIMIT})`, server, ca, true));
  await stopServer(server, "nodeplane");
  server = await start(["--max-requests-per-second-per-identity", "0"]);
  rows.push(await phase("victim + flood, no per-identity limit", server, ca, true));
  await stopServer(server, "nodeplane");

  const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "–");
  const lines = [
    `Victim: ${VICTIM_RATE} GetNode/s for ${SECONDS} s. Flooder: ListNodes (limit 10), ${IN_FLIGHT} in flight. ${os.cpus().length} CPUs, ${os.hostname()}.`,
    "",
    "| phase | victim ok / sent | victim errors | victim p50 ms | victim p99 ms | victim max ms | flooder ok | flooder RESOURCE_EXHAUSTED | flooder other errors |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${r.phase} | ${fmtInt(r.victim.ok)} / ${fmtInt(r.victim.sent)} | ${fmtInt(r.victim.failed)} | ${ms(r.victim.p50)} | ${ms(r.victim.p99)} | ${ms(r.victim.max)} | ${r.flood ? fmtInt(r.flood.ok) : "–"} | ${r.flood ? fmtInt(r.flood.limited) : "–"} | ${r.flood ? fmtInt(r.flood.failed) : "–"} |`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

runMain("auth-flood", main);
