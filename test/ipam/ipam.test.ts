/** Pod CIDR allocation through the real server: distinct blocks, restarts, release and reuse, exhaustion, bad flags. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/client/client.js";
import { InvalidArgumentError } from "../../src/client/errors.js";
import type { Node } from "../../src/gen/nodeplane/v1/node.js";
import { parseCIDR } from "../../src/validation/net.js";
import { type Harness, agentNode, startHarness } from "../support/server.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const DUAL = { clusterCidr: "10.96.0.0/14,fd00:10:96::/48", nodeCidrMaskSizeIpv4: 24, nodeCidrMaskSizeIpv6: 64 };

/** True when `cidr` lies inside `cluster`. */
function inside(cidr: string, cluster: string): boolean {
  const c = parseCIDR(cidr);
  const k = parseCIDR(cluster);
  const bits = BigInt((c.family === 4 ? 32 : 128) - k.prefixLength);
  return c.family === k.family && c.prefixLength >= k.prefixLength && c.network >> bits === k.network >> bits;
}

const cidrsOf = (nodes: (Node | undefined)[]): string[] => nodes.flatMap((n) => n?.spec?.podCidrs ?? []);

describe("pod CIDR allocation", () => {
  it("gives 1,000 concurrent registrations 1,000 distinct blocks in both families, and none twice after a restart", async () => {
    h = await startHarness({ ipam: DUAL });
    const first = await Promise.all(Array.from({ length: 1000 }, (_, i) => h!.client.register(agentNode(`n-${i}`)).then((r) => r.node)));
    for (const node of first) {
      const [v4, v6] = node?.spec?.podCidrs ?? [];
      expect(inside(v4!, "10.96.0.0/14") && v4!.endsWith("/24"), v4).toBe(true);
      expect(inside(v6!, "fd00:10:96::/48") && v6!.endsWith("/64"), v6).toBe(true);
      expect(node?.spec?.podCidr).toBe(v4);
    }
    expect(new Set(cidrsOf(first)).size).toBe(2000);

    await h.restart();
    const second = await Promise.all(Array.from({ length: 24 }, (_, i) => h!.client.register(agentNode(`m-${i}`)).then((r) => r.node)));
    const all = cidrsOf([...first, ...second]);
    expect(new Set(all).size).toBe(all.length);
    // Every node kept its blocks across the restart.
    const { nodes } = await h.client.listAllNodes();
    expect(new Set(cidrsOf(nodes))).toEqual(new Set(all));
  });

  it("releases a deleted node's blocks and gives them to a node that was waiting (exhaustion and recovery)", async () => {
    h = await startHarness({ ipam: { clusterCidr: "10.0.0.0/30", nodeCidrMaskSize: 31 } });
    const a = (await h.client.register(agentNode("a"))).node!;
    const b = (await h.client.register(agentNode("b"))).node!;
    expect(cidrsOf([a, b]).sort()).toEqual(["10.0.0.0/31", "10.0.0.2/31"]);
    const c = (await h.client.register(agentNode("c"))).node!;
    expect(c.spec?.podCidrs).toEqual([]);
    const net = c.status?.conditions.find((x) => x.type === "NetworkUnavailable");
    expect(net).toMatchObject({ status: "True", reason: "CIDRNotAvailable" });
    expect(net?.message).toContain("10.0.0.0/30");
    expect((await h.client.listEvents("c")).map((e) => e.reason)).toContain("CIDRNotAvailable");

    const watch = h.client.watch({ fieldSelector: "metadata.name=c", resourceVersion: c.metadata?.resourceVersion });
    await h.client.deleteNode("a");
    let got: WatchEvent | undefined;
    for await (const ev of watch) {
      if ((ev.node.spec?.podCidrs.length ?? 0) > 0) {
        got = ev;
        break;
      }
    }
    expect(got?.node.spec?.podCidrs).toEqual(a.spec?.podCidrs);
    expect(got?.node.status?.conditions.find((x) => x.type === "NetworkUnavailable")).toMatchObject({ status: "False", reason: "CIDRAssigned" });
  });

  it("respects a node's own CIDRs, refuses one out of range or taken, and never changes them afterwards", async () => {
    h = await startHarness({ ipam: DUAL });
    const own = await h.client.createNode({ metadata: { name: "own" }, spec: { podCidrs: ["10.97.5.0/24", "fd00:10:96:7::/64"] } });
    expect(own.spec?.podCidrs).toEqual(["10.97.5.0/24", "fd00:10:96:7::/64"]);

    const cases: [string, string[], string][] = [
      ["outside the cluster CIDR", ["10.200.0.0/24"], "outside the cluster CIDR"],
      ["not a node-sized block", ["10.97.0.0/23"], "/24 block"],
      ["taken by another node", ["10.97.5.0/24"], "already allocated"],
    ];
    for (const [what, podCidrs, says] of cases) {
      const err = await h.client.createNode({ metadata: { name: `bad-${what.replace(/\W+/g, "-").toLowerCase()}` }, spec: { podCidrs } }).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message, what).toContain(says);
    }
    // The refused requests changed nothing: the next allocations never hand out 10.97.5.0/24.
    const many = await Promise.all(Array.from({ length: 300 }, (_, i) => h!.client.register(agentNode(`x-${i}`)).then((r) => r.node)));
    expect(cidrsOf(many)).not.toContain("10.97.5.0/24");

    const err = await h.client.updateNode({ ...own, spec: { ...own.spec, podCidr: "10.97.6.0/24", podCidrs: ["10.97.6.0/24"] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain("immutable");
  });
});

describe("IPAM flags", () => {
  const run = promisify(execFile);
  const rows: [string, string[], string][] = [
    ["no --cluster-cidr", ["--allocate-node-cidrs"], "needs --cluster-cidr"],
    ["more than two CIDRs", ["--allocate-node-cidrs", "--cluster-cidr", "10.0.0.0/16,fd00::/48,fd01::/48"], "at most two CIDRs"],
    ["two of one family", ["--allocate-node-cidrs", "--cluster-cidr", "10.0.0.0/16,10.1.0.0/16"], "two IPv4 CIDRs"],
    ["single-stack flag with dual stack", ["--allocate-node-cidrs", "--cluster-cidr", "10.0.0.0/16,fd00::/48", "--node-cidr-mask-size", "24"], "single stack only"],
    ["IPv6 node mask more than 16 bits longer", ["--allocate-node-cidrs", "--cluster-cidr", "fd00::/48", "--node-cidr-mask-size-ipv6", "80"], "at most 16 bits longer"],
    ["node mask shorter than the cluster mask", ["--allocate-node-cidrs", "--cluster-cidr", "10.0.0.0/16", "--node-cidr-mask-size-ipv4", "8"], "shorter than the cluster CIDR"],
    ["a bad CIDR", ["--allocate-node-cidrs", "--cluster-cidr", "10.0.0.1/8"], "host bits zero"],
  ];
  it.each(rows)("refuses %s at start-up", async (_what, args, says) => {
    const bin = new URL("../../bin/nodeplane.js", import.meta.url).pathname;
    const err = await run(process.execPath, [bin, "serve", "--listen", "127.0.0.1:0", "--http-listen", "", "--data-dir", "/nonexistent/never-opened", ...args]).catch(
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain(says);
  });
});
