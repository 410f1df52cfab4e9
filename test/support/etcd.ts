/**
 * Real etcd for tests: one member, or a cluster of three, on free loopback ports with data in
 * temp dirs. `startEtcd` resolves once every member says it serves clients; `stop()` kills
 * every member and removes the data (call it from afterAll; members are also killed if the
 * test process exits first). Members can be killed and started again on the same data and
 * ports (failover tests). Fails, never skips, when etcd is not installed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll } from "vitest";

const ETCD_BIN = "/usr/bin/etcd";
const READY_MS = 20_000;

interface EtcdTls {
  certFile: string;
  keyFile: string;
  /** Clients must present a certificate signed by this CA. */
  caFile: string;
}

interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly running: boolean;
  /** End the member (SIGKILL by default) and wait for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same data dir and ports; resolves once it serves clients. */
  start(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  /** Every member's client URL. */
  readonly endpoints: string[];
  /** Kill every member and remove the data. Idempotent. */
  stop(): Promise<void>;
}

interface StartEtcdOptions {
  /** 1 (default) or 3. */
  members?: 1 | 3;
  /** Serve clients over TLS with these files (client certificates required). */
  tls?: EtcdTls;
}

const alive = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of alive) child.kill("SIGKILL");
});

export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdCluster> {
  if (!fs.existsSync(ETCD_BIN)) {
    throw new Error(`etcd is not installed (${ETCD_BIN} is missing): install it with \`apt-get install -y etcd-server\` (.ci/run does)`);
  }
  // A port checked free can still be bound by a test process running beside this one before
  // etcd binds it: then the whole cluster starts again on other ports (a few times at most).
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.includes("address already in use")) throw err;
    }
  }
}

async function startOnce(opts: StartEtcdOptions): Promise<EtcdCluster> {
  const count = opts.members ?? 1;
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-etcd-"));
  const scheme = opts.tls ? "https" : "http";
  const specs = [];
  for (let i = 0; i < count; i++) {
    const [client, peer] = [await freePort(), await freePort()];
    specs.push({ name: `m${i}`, clientUrl: `${scheme}://127.0.0.1:${client}`, peerUrl: `http://127.0.0.1:${peer}` });
  }
  const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(",");
  const token = path.basename(base);
  const members = specs.map((s) => {
    const args = [
      ...["--name", s.name, "--data-dir", path.join(base, s.name), "--logger=zap", "--log-level=info"],
      ...["--listen-client-urls", s.clientUrl, "--advertise-client-urls", s.clientUrl],
      ...["--listen-peer-urls", s.peerUrl, "--initial-advertise-peer-urls", s.peerUrl],
      ...["--initial-cluster", initialCluster, "--initial-cluster-token", token],
      ...(opts.tls ? ["--cert-file", opts.tls.certFile, "--key-file", opts.tls.keyFile, "--trusted-ca-file", opts.tls.caFile, "--client-cert-auth"] : []),
    ];
    return new Member(s.name, s.clientUrl, args);
  });
  let stopped = false;
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(members.map((m) => m.kill()));
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(members.map((m) => m.start()));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

class Member implements EtcdMember {
  private child: ChildProcess | undefined;
  private exited: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    private readonly args: string[],
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error(`etcd member ${this.name} is already running`);
    const child = spawn(ETCD_BIN, this.args, { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    alive.add(child);
    this.exited = once(child, "exit").then(() => {
      alive.delete(child);
      if (this.child === child) this.child = undefined;
    });
    // The last lines it logged, for the failure message.
    const log: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(`did not serve clients within ${READY_MS} ms`), READY_MS);
      const fail = (why: string): void => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(new Error(`etcd member ${this.name} (${this.clientUrl}) ${why}; its log ends:\n${log.join("\n")}`));
      };
      createInterface({ input: child.stderr! }).on("line", (line) => {
        log.push(line);
        if (log.length > 30) log.shift();
        // Logged once the member has joined its cluster and serves (etcd 3.4's embed/serve.go).
        if (/"msg":"serving client traffic (in)?securely/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code, signal) => fail(`exited (${code ?? signal}) before serving clients`));
      child.once("error", (err) => fail(`could not start: ${err.message}`));
    });
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    this.child?.kill(signal);
    await this.exited;
  }
}

/** One etcd for the whole test file: started before its first test, stopped after its last. */
export function etcdForFile(opts: StartEtcdOptions = {}): () => EtcdCluster {
  let cluster: EtcdCluster | undefined;
  beforeAll(async () => {
    cluster = await startEtcd(opts);
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => {
    if (!cluster) throw new Error("etcd is not started yet (use it inside a test)");
    return cluster;
  };
}

/** The member that is raft leader now (each member is asked who leads). */
export async function raftLeader(cluster: EtcdCluster): Promise<EtcdMember> {
  for (const member of cluster.members.filter((m) => m.running)) {
    const client = new Etcd3({ hosts: member.clientUrl });
    try {
      const status = await client.maintenance.status({});
      if (status.leader === status.header.member_id) return member;
    } finally {
      client.close();
    }
  }
  throw new Error("no running member says it leads");
}

/**
 * A port nothing listens on right now, picked outside the kernel's ephemeral range: a port from
 * that range (what `listen(0)` hands out) can be taken by any outgoing connection of the tests
 * running in parallel before etcd binds it, or while a killed member is down (seen in CI: "bind:
 * address already in use"). Ports below the range are only ever taken by an explicit bind.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const from = 10_000;
  if (low - from < 1_000) return ephemeralPort(); // no room below the range: the OS's pick
  for (;;) {
    const port = from + Math.floor(Math.random() * (low - from));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
}

const handedOut = new Set<number>();

function ephemeralRange(): [number, number] {
  try {
    const [low, high] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)) return [low, high];
  } catch {
    // not Linux: the IANA range
  }
  return [49_152, 65_535];
}

async function bindable(port: number): Promise<boolean> {
  const server = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => resolve(true));
  });
  if (ok) {
    server.close();
    await once(server, "close");
  }
  return ok;
}

async function ephemeralPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, "close");
  return port;
}
