/**
 * Test harness: a real NodeplaneServer on 127.0.0.1:0 over a temp data dir, and the real SDK
 * client. `restart()` reopens the same data dir (durability and resume tests).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeClient } from "../../src/client/client.js";
import type { NodeInput } from "../../src/client/client.js";
import { createLogger } from "../../src/log.js";
import { NodeplaneServer, type ServeOptions } from "../../src/server/server.js";

export interface Harness {
  server: NodeplaneServer;
  client: NodeClient;
  dataDir: string;
  /** Shut the server down and start a new one on the same data dir (new port, new client). */
  restart(overrides?: Partial<ServeOptions>): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(overrides: Partial<ServeOptions> = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), "nodeplane-test-"));
  const start = async (o: Partial<ServeOptions>): Promise<NodeplaneServer> => {
    const server = await NodeplaneServer.start({
      listen: "127.0.0.1:0",
      httpListen: null,
      dataDir,
      logger: createLogger("silent"),
      // Tests that are not about the controller keep it out of their way.
      nodeLifecycle: false,
      ...o,
    });
    // Serving starts before the watch cache has loaded; tests not about start-up begin ready.
    await server.whenReady();
    return server;
  };
  const h: Harness = {
    server: await start(overrides),
    client: undefined as unknown as NodeClient,
    dataDir,
    async restart(more = {}) {
      h.client.close();
      await h.server.shutdown();
      h.server = await start({ ...overrides, ...more });
      h.client = new NodeClient(`127.0.0.1:${h.server.port}`);
    },
    async close() {
      h.client.close();
      await h.server.shutdown();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  h.client = new NodeClient(`127.0.0.1:${h.server.port}`);
  return h;
}

/** A node as an agent would register it. */
export function agentNode(name: string, extra: NodeInput = {}): NodeInput {
  const labels = { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", ...extra.metadata?.labels };
  return {
    metadata: { ...extra.metadata, name, labels },
    spec: extra.spec ?? {},
    status: {
      capacity: { cpu: "4", memory: "16Gi", pods: "110" },
      allocatable: { cpu: "3800m", memory: "15Gi", pods: "110" },
      addresses: [
        { type: "InternalIP", address: "10.0.0.7" },
        { type: "Hostname", address: name },
      ],
      conditions: [{ type: "Ready", status: "True", reason: "AgentReady", message: "agent is posting ready status" }],
      nodeInfo: { kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12", operatingSystem: "linux", architecture: "amd64", agentVersion: "0.1.0" },
      ...extra.status,
    },
  };
}

/** Collect events from an async iterable until `until` says stop. */
export async function collect<T>(it: AsyncIterable<T>, until: (seen: T[]) => boolean): Promise<T[]> {
  const seen: T[] = [];
  for await (const ev of it) {
    seen.push(ev);
    if (until(seen)) break;
  }
  return seen;
}
