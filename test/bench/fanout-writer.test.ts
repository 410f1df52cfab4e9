/**
 * The fan-out benchmark's writer sends what it claims to: its spliced requests decode to the
 * UpdateStatusRequest that encoding the stamped status whole gives, and its bare HTTP/2 calls
 * reach a real server as UpdateStatus calls — applied, answered with the node, errors carrying
 * the server's gRPC status — so the benchmark still measures UpdateStatus.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeStatus } from "../../src/gen/nodeplane/v1/node.js";
import { NodeServiceService, UpdateStatusRequest, UpdateStatusResponse } from "../../src/gen/nodeplane/v1/service.js";
import { StampedRequests } from "../../bench/fanout-request.js";
import { CallError, H2Unary } from "../../bench/h2-unary.js";
import { realisticNode, realisticStatus, scaleNodeName } from "../support/realistic-node.js";
import { type Harness, startHarness } from "../support/server.js";

/** The request the writer means: node i's realistic status, the Ready message stamped, every heartbeat at t. */
function whole(i: number, seq: number, t: number): UpdateStatusRequest {
  const name = scaleNodeName(i);
  const status = NodeStatus.fromPartial(realisticStatus(i, name));
  const at = new Date(t);
  const conditions = status.conditions.map((c) => ({ ...c, lastHeartbeatTime: at, ...(c.type === "Ready" ? { message: `bench seq=${seq} t=${t.toFixed(3)}` } : {}) }));
  return UpdateStatusRequest.fromPartial({ name, status: { ...status, conditions }, resourceVersion: "" });
}

describe("the fan-out writer's requests", () => {
  it("decode to the whole request, for every write of a node and across nodes", () => {
    const requests = new StampedRequests();
    for (const [i, seq, t] of [
      [0, 0, 1_700_000_000_000.25],
      [0, 1, 1_700_000_000_001.5],
      [7, 123_456, 1_700_000_000_002],
      [9_999, 2, 1_800_000_000_000.125],
    ] as const) {
      const bytes = requests.request(i, scaleNodeName(i), seq, t);
      const decoded = UpdateStatusRequest.decode(bytes);
      expect(decoded).toEqual(whole(i, seq, t));
      expect(decoded.status!.conditions.find((c) => c.type === "Ready")!.message).toBe(`bench seq=${seq} t=${t.toFixed(3)}`);
    }
  });
});

describe("bare HTTP/2 unary calls", () => {
  let h: Harness;
  let h2: H2Unary;
  beforeAll(async () => {
    h = await startHarness();
    h2 = await H2Unary.connect(`127.0.0.1:${h.server.port}`);
  });
  afterAll(async () => {
    h2?.close();
    await h?.close();
  });

  it("apply an UpdateStatus and return the server's answer", async () => {
    await h.client.register(realisticNode(3));
    const t = Date.UTC(2026, 11, 6, 12, 0, 0);
    const answer = await h2.call(NodeServiceService.updateStatus.path, new StampedRequests().request(3, scaleNodeName(3), 42, t), 10_000);
    const node = UpdateStatusResponse.decode(answer).node!;
    expect(node.metadata!.name).toBe(scaleNodeName(3));
    const stored = await h.client.getNode(scaleNodeName(3));
    expect(stored.metadata!.resourceVersion).toBe(node.metadata!.resourceVersion);
    const ready = stored.status!.conditions.find((c) => c.type === "Ready")!;
    expect(ready.message).toBe(`bench seq=42 t=${t.toFixed(3)}`);
    expect(ready.lastHeartbeatTime!.getTime()).toBe(t);
  });

  it("reject with the server's gRPC status and message", async () => {
    const err = await h2.call(NodeServiceService.updateStatus.path, new StampedRequests().request(4, scaleNodeName(4), 1, Date.now()), 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallError);
    expect((err as CallError).code).toBe(5); // NOT_FOUND: node 4 was never registered
    expect((err as CallError).message).toContain(scaleNodeName(4));
  });

  it("carry many calls at once on the one session", async () => {
    const names = Array.from({ length: 50 }, (_, k) => 100 + k);
    await Promise.all(names.map((i) => h.client.register(realisticNode(i))));
    const requests = new StampedRequests();
    const answers = await Promise.all(names.map((i, k) => h2.call(NodeServiceService.updateStatus.path, requests.request(i, scaleNodeName(i), k, Date.now()), 10_000)));
    expect(answers.map((a) => UpdateStatusResponse.decode(a).node!.metadata!.name)).toEqual(names.map(scaleNodeName));
  });
});
