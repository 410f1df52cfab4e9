/** The served surface beyond NodeService: reflection as grpcurl uses it, health, HTTP probes, metrics. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotFoundError } from "../../src/client/errors.js";
import { type Harness, startHarness } from "../support/server.js";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { StrictReflectionClient } from "../support/reflection-client.js";

let h: Harness;
let base: string;
beforeAll(async () => {
  h = await startHarness({ httpListen: "127.0.0.1:0" });
  base = `http://127.0.0.1:${h.server.httpPort}`;
});
afterAll(() => h.close());

describe("reflection on the real server, as a strict client (grpcurl) sees it", () => {
  it("lists the services and resolves Register with its imports, then calls with JSON", async () => {
    const r = new StrictReflectionClient(`127.0.0.1:${h.server.port}`);
    try {
      expect(await r.listServices()).toEqual(expect.arrayContaining(["nodeplane.v1.NodeService", "grpc.health.v1.Health"]));
      const register = await r.resolveMethod("nodeplane.v1.NodeService/Register");
      expect(register.requestType.fullName).toBe(".nodeplane.v1.RegisterRequest");
      expect(r.collector.fileNames()).toContain("google/protobuf/timestamp.proto");
      const reply = await r.callUnary(register, { node: { metadata: { name: "refl-1", labels: { a: "b" } } } });
      expect(reply).toMatchObject({ node: { metadata: { name: "refl-1", labels: { a: "b" } } }, lease: { spec: { leaseDurationSeconds: 40 } } });
      const health = await r.resolveMethod("grpc.health.v1.Health/Check");
      expect(await r.callUnary(health, { service: "nodeplane.v1.NodeService" })).toEqual({ status: "SERVING" });
    } finally {
      r.close();
    }
  });
});

describe("HTTP side", () => {
  it("answers /healthz and /readyz", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it("counts RPCs by method and code and times them", async () => {
    await expect(h.client.getNode("missing")).rejects.toBeInstanceOf(NotFoundError);
    await h.client.createNode({ metadata: { name: "metrics-1" } });
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^nodeplane_grpc_server_handled_total\{method="GetNode",code="NOT_FOUND"\} 1$/m);
    expect(text).toMatch(/^nodeplane_grpc_server_handled_total\{method="CreateNode",code="OK"\} 1$/m);
    expect(text).toMatch(/^nodeplane_grpc_server_handling_seconds_count\{method="CreateNode"\} 1$/m);
    expect(text).toMatch(/^nodeplane_store_revision \d+$/m);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodeplane_store_commit_batch_transactions_count [1-9]\d*$/m);
    expect(text).toMatch(/^nodeplane_store_commit_seconds_count [1-9]\d*$/m);
  });

  it("serves /metrics that a real Prometheus text parser accepts, with counters that move", async () => {
    const handled = async (): Promise<number> => {
      const families = parsePrometheusTextFormat(await (await fetch(`${base}/metrics`)).text());
      const family = families.find((f) => f.name === "nodeplane_grpc_server_handled_total");
      expect(family?.type).toBe("COUNTER");
      const sample = family?.metrics.find((m) => m.labels?.method === "GetLease" && m.labels?.code === "NOT_FOUND");
      return Number(sample?.value ?? 0);
    };
    const before = await handled();
    await expect(h.client.getLease("nobody")).rejects.toBeInstanceOf(NotFoundError);
    await expect(h.client.getLease("nobody")).rejects.toBeInstanceOf(NotFoundError);
    expect((await handled()) - before).toBe(2);
    const families = parsePrometheusTextFormat(await (await fetch(`${base}/metrics`)).text());
    const histogram = families.find((f) => f.name === "nodeplane_grpc_server_handling_seconds");
    expect(histogram?.type).toBe("HISTOGRAM");
    expect(families.map((f) => f.name)).toEqual(expect.arrayContaining(["nodeplane_watchers", "nodeplane_store_revision", "nodeplane_store_commit_seconds"]));
  });

  it("reports not ready once the store is closed", async () => {
    await h.server.store.close();
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("closed");
  });
});
