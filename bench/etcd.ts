/**
 * etcd as a benchmark baseline: what Kubernetes pays per node heartbeat (one durable write of a
 * Lease-sized value). Finds the `etcd` binary (Debian `etcd-server`), starts a single member on
 * loopback with its data in a temp dir (removed on exit, with the process killed: harness.ts),
 * reads its Put counters from its /metrics, and encodes the PutRequest by hand (no etcd client
 * library needed: key = field 1, value = field 2).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { scrapeMetrics, sleep, sumOf, tempDir, track } from "./harness.js";

export const ETCD_PACKAGE = "etcd-server";
export const ETCD_PUT_PATH = "/etcdserverpb.KV/Put";

export interface Tool {
  path: string;
  version: string;
}

/** A tool on PATH (or in $ENV_BIN) and its version (`pattern`'s group); the reason when it cannot run. */
export function findTool(bin: string, pattern: RegExp): Tool | { missing: string } {
  const res = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (res.error || res.status !== 0) {
    const why = res.error ? res.error.message : `exited with ${res.status}: ${(res.stderr || res.stdout).trim()}`;
    return { missing: `\`${bin} --version\` failed (${why})` };
  }
  return { path: bin, version: pattern.exec(res.stdout)?.[1] ?? res.stdout.trim() };
}

export const findEtcd = (): Tool | { missing: string } => findTool(process.env.ETCD_BIN || "etcd", /etcd Version:\s*(\S+)/);

export interface Etcd {
  child: ChildProcess;
  clientUrl: string;
  port: number;
  dataDir: string;
  version: string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound, read, released: a small race, acceptable for a benchmark). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no port"))));
    });
  });
}

/** Start one etcd member on loopback in a fresh temp dir; resolves once /health says true (bounded). */
export async function startEtcd(bin: Tool): Promise<Etcd> {
  const dataDir = path.join(tempDir("nodeplane-bench-etcd-"), "data");
  const port = await freePort();
  let peer = await freePort();
  while (peer === port) peer = await freePort();
  const clientUrl = `http://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const args = [
    ...["--name", "t", "--data-dir", dataDir, "--logger=zap", "--log-level=warn"],
    ...["--listen-client-urls", clientUrl, "--advertise-client-urls", clientUrl],
    ...["--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl, "--initial-cluster", `t=${peerUrl}`],
  ];
  const child = track(spawn(bin.path, args, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  const keep = (d: Buffer): void => void (out.length < 64 * 1024 && (out += d.toString()));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`etcd exited (${child.exitCode ?? child.signalCode}) before serving:\n${out}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`etcd did not become healthy at ${clientUrl} within 20 s:\n${out}`);
    }
    const healthy = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) }).then(
      async (res) => res.ok && ((await res.json()) as { health?: string }).health === "true",
      () => false,
    );
    if (healthy) break;
    await sleep(100);
  }

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, clientUrl, port, dataDir, version: bin.version, stop };
}

/** etcd's own view of Puts: gRPC outcomes of KV/Put and its MVCC revision (one per committed write). */
export async function scrapeEtcd(clientUrl: string): Promise<{ ok: number; notOk: number; revision: number }> {
  const s = await scrapeMetrics(Number(new URL(clientUrl).port));
  const put = { grpc_service: "etcdserverpb.KV", grpc_method: "Put" };
  const ok = sumOf(s, "grpc_server_handled_total", { ...put, grpc_code: "OK" });
  return { ok, notOk: sumOf(s, "grpc_server_handled_total", put) - ok, revision: sumOf(s, "etcd_debugging_mvcc_current_revision") };
}

// ---------------------------------------------------------------------------------------
// etcdserverpb.PutRequest, by hand

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const bytesField = (field: number, value: Uint8Array): Buffer => Buffer.concat([varint((field << 3) | 2), varint(value.length), value]);

/** An encoded PutRequest { key = 1, value = 2 } (no lease, no prev_kv) of the node's Lease key, where Kubernetes keeps it. */
export const encodeLeasePut = (nodeName: string, value: Uint8Array): Buffer =>
  Buffer.concat([bytesField(1, Buffer.from(`/registry/leases/kube-node-lease/${nodeName}`, "utf8")), bytesField(2, value)]);
