/**
 * What a crash costs Lease renewals, exactly as service.proto states it: a renewal is answered
 * at once and made durable by the next checkpoint, so SIGKILL loses exactly the renewals answered
 * since the last checkpoint (or durable write) of their Lease — never anything before it. A
 * graceful stop writes them all. The real server, spawned with node, killed for real.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NodeClient } from "../../src/client/client.js";
import type { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { spawnServer, type Spawned } from "../support/process.js";
import { openWatch } from "../support/rest.js";
import { agentNode } from "../support/server.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function serverArgs(checkpoint: string, extra: string[] = []): { args: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "nodeplane-lease-crash-"));
  dirs.push(dir);
  return {
    args: ["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn", "--lease-checkpoint-interval", checkpoint, ...extra],
  };
}

async function withServer<T>(args: string[], fn: (client: NodeClient, s: Spawned) => Promise<T>): Promise<T> {
  const s = await spawnServer(args);
  const client = new NodeClient(`127.0.0.1:${s.grpcPort}`);
  try {
    return await fn(client, s);
  } finally {
    client.close();
  }
}

async function kill(s: Spawned): Promise<void> {
  s.child.kill("SIGKILL");
  expect((await s.exited).signal).toBe("SIGKILL");
}

async function stop(s: Spawned): Promise<void> {
  s.child.kill("SIGTERM");
  expect((await s.exited).code).toBe(0);
}

const renewMs = (l: Lease): number => l.spec!.renewTime!.getTime();

describe("Lease renewals and a crash", () => {
  it("SIGKILL loses exactly the renewals answered since the Lease's last durable write, and nothing before it", async () => {
    // No checkpoint falls inside this test: renewals stay in memory until the kill.
    const { args } = serverArgs("2m", ["--node-monitor-grace-period", "16m"]);
    const durable = await withServer(args, async (client, s) => {
      await client.register(agentNode("crash-lease"));
      const renewed: Lease[] = [];
      for (let i = 0; i < 3; i++) renewed.push(await client.renewLease("crash-lease"));
      expect(renewMs(await client.getLease("crash-lease"))).toBe(renewMs(renewed.at(-1)!));
      // A change of holder is a durable write, answered after its commit.
      const written = await client.renewLease("crash-lease", { holderIdentity: "other-holder" });
      const after: Lease[] = [];
      for (let i = 0; i < 3; i++) after.push(await client.renewLease("crash-lease"));
      expect(after.every((l) => l.spec?.holderIdentity === "other-holder")).toBe(true);
      expect(renewMs(after.at(-1)!)).toBeGreaterThanOrEqual(renewMs(written));
      await kill(s);
      return written;
    });
    await withServer(args, async (client, s) => {
      const lease = await client.getLease("crash-lease");
      expect(lease.metadata?.resourceVersion).toBe(durable.metadata?.resourceVersion);
      expect(lease.spec).toEqual(durable.spec);
      await stop(s);
    });
  });

  it("SIGKILL right after the checkpoint that wrote a renewal keeps that renewal", async () => {
    const { args } = serverArgs("100ms", ["--lease-write-interval", "0s"]);
    const acked = await withServer(args, async (client, s) => {
      await client.register(agentNode("crash-ckpt"));
      const from = (await client.getLease("crash-ckpt")).metadata!.resourceVersion;
      // The REST watch reads the store: it shows a renewal when the checkpoint that writes it commits.
      const w = await openWatch(
        `http://127.0.0.1:${s.httpPort}`,
        `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases?watch=true&fieldSelector=metadata.name%3Dcrash-ckpt&resourceVersion=${from}`,
      );
      const renewed = await client.renewLease("crash-ckpt");
      for (;;) {
        const ev = await w.next();
        const spec = ev?.object.spec as { renewTime?: string } | undefined;
        if (!ev) throw new Error("the lease watch ended before the checkpoint");
        if (spec?.renewTime && Date.parse(spec.renewTime) === renewMs(renewed)) break;
      }
      w.close();
      await kill(s);
      return renewed;
    });
    await withServer(args, async (client, s) => {
      expect(renewMs(await client.getLease("crash-ckpt"))).toBe(renewMs(acked));
      await stop(s);
    });
  });

  it("with a write interval S, SIGKILL leaves a stored renew time trailing the last renewal answered by less than S + 2 × L", async () => {
    // C = 100 ms, S = 1 s, L = an eighth of the 8 s grace period = 1 s; renewals back to back for
    // 4 s, longer than S + 2 × L: had no checkpoint written one, the bound would not hold.
    const S = 1_000;
    const L = 1_000;
    const { args } = serverArgs("100ms", ["--lease-write-interval", "1s", "--node-monitor-grace-period", "8s"]);
    const last = await withServer(args, async (client, s) => {
      await client.register(agentNode("crash-spaced"));
      const hb = client.heartbeat();
      let renewed!: Lease;
      const until = Date.now() + S + 2 * L + 1_000;
      while (Date.now() < until) {
        renewed = (await hb.renew("crash-spaced")).lease;
      }
      hb.close();
      await kill(s);
      return renewed;
    });
    await withServer(args, async (client, s) => {
      const kept = renewMs(await client.getLease("crash-spaced"));
      expect(kept).toBeLessThanOrEqual(renewMs(last));
      expect(renewMs(last) - kept).toBeLessThan(S + 2 * L);
      await stop(s);
    });
  });

  it("a graceful stop (SIGTERM) writes every renewal answered", async () => {
    const { args } = serverArgs("2m", ["--node-monitor-grace-period", "16m"]);
    const last = await withServer(args, async (client, s) => {
      await client.register(agentNode("crash-term"));
      let renewed!: Lease;
      for (let i = 0; i < 3; i++) renewed = await client.renewLease("crash-term");
      await stop(s);
      return renewed;
    });
    await withServer(args, async (client, s) => {
      expect(renewMs(await client.getLease("crash-term"))).toBe(renewMs(last));
      await stop(s);
    });
  });
});
