/**
 * etcd as a benchmark baseline: what Kubernetes pays per node heartbeat (one durable write of
 * a Lease-sized value). Finds the `etcd` binary (Debian `etcd-server`), starts a single member on
 * loopback with its data in a temp dir (removed on exit, with the process killed, by harness.ts),
 * and reads its Put counters from its /metrics. The PutRequest itself is encoded by hand
 * (bench/protocol.ts: key = field 1, value = field 2; no etcd client library needed).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { scrapeMetrics, sumOf, track, trackTempDir } from "./harness.js";

/** How bench/run.ts says what to install when etcd is missing. */
export const ETCD_PACKAGE = "etcd-server";

export interface EtcdBinary {
  path: string;
  version: string;
}

/** The etcd binary on PATH (or $ETCD_BIN) and its version; undefined, with the reason, when absent. */
export function findEtcd(): EtcdBinary | { missing: string } {
  const bin = process.env.ETCD_BIN || "etcd";
  const res = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (res.error || res.status !== 0) {
    const why = res.error ? res.error.message : `exited with ${res.status}: ${(res.stderr || res.stdout).trim()}`;
    return { missing: `\`${bin} --version\` failed (${why})` };
  }
  const version = /etcd Version:\s*(\S+)/.exec(res.stdout)?.[1] ?? "unknown";
  return { path: bin, version };
}

export interface Etcd {
  child: ChildProcess;
  clientUrl: string;
  port: number;
  dataDir: string;
  version: string;
  output(): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound, read, released: a small race, acceptable for a benchmark). */
export function freePort(): Promise<number> {
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
export async function startEtcd(bin: EtcdBinary): Promise<Etcd> {
  const base = trackTempDir(fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-bench-etcd-")));
  const dataDir = path.join(base, "data");
  const port = await freePort();
  let peer = await freePort();
  while (peer === port) peer = await freePort();
  const clientUrl = `http://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const args = [
    "--name", "t",
    "--data-dir", dataDir,
    "--logger=zap", "--log-level=warn",
    "--listen-client-urls", clientUrl,
    "--advertise-client-urls", clientUrl,
    "--listen-peer-urls", peerUrl,
    "--initial-advertise-peer-urls", peerUrl,
    "--initial-cluster", `t=${peerUrl}`,
  ];
  const child = track(spawn(bin.path, args, { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  const keep = (d: Buffer): void => {
    if (out.length < 64 * 1024) out += d.toString();
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exitedEarly) throw new Error(`etcd exited (${child.exitCode ?? child.signalCode}) before serving:\n${out}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`etcd did not become healthy at ${clientUrl} within 20 s:\n${out}`);
    }
    try {
      const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok && ((await res.json()) as { health?: string }).health === "true") break;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, clientUrl, port, dataDir, version: bin.version, output: () => out, stop };
}

/** etcd's own view of Puts: gRPC outcomes of KV/Put, MVCC puts applied, current revision. */
export interface EtcdCounters {
  putOk: number;
  putNotOk: number;
  mvccPuts: number;
  revision: number;
  walFsyncs: number;
}

export async function scrapeEtcd(clientUrl: string): Promise<EtcdCounters> {
  const port = Number(new URL(clientUrl).port);
  const s = await scrapeMetrics(port);
  const putLabels = { grpc_service: "etcdserverpb.KV", grpc_method: "Put" };
  const all = sumOf(s, "grpc_server_handled_total", putLabels);
  const ok = sumOf(s, "grpc_server_handled_total", { ...putLabels, grpc_code: "OK" });
  return {
    putOk: ok,
    putNotOk: all - ok,
    mvccPuts: sumOf(s, "etcd_mvcc_put_total"),
    revision: sumOf(s, "etcd_debugging_mvcc_current_revision"),
    walFsyncs: sumOf(s, "etcd_disk_wal_fsync_duration_seconds_count"),
  };
}
