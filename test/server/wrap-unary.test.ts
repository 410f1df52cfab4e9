/**
 * The unary wrapper: a handler answers with a value, a promise, or a throw, and each is answered
 * once, counted by its code.
 */
import { type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { NotFoundError } from "../../src/errors.js";
import { Calls } from "../../src/server/calls.js";
import { ServerMetrics } from "../../src/server/metrics.js";
import { wrapUnary } from "../../src/server/node-service.js";

interface Req {
  name: string;
}
interface Res {
  answer: string;
}

const metrics = new ServerMetrics({ storeRevision: () => Promise.resolve(0), processMetrics: false });

/** Call `handler` once as grpc-js would; resolves with what it called back. */
function callOnce(calls: Calls, handler: (req: Req) => Res | Promise<Res>): Promise<{ err: unknown; res: Res | null | undefined }> {
  const call = { request: { name: "n" }, getPeer: () => "127.0.0.1:1" } as unknown as ServerUnaryCall<Req, Res>;
  return new Promise((resolve) => {
    let answers = 0;
    const callback: sendUnaryData<Res> = (err, res) => {
      answers++;
      expect(answers).toBe(1);
      resolve({ err, res });
    };
    wrapUnary<Req, Res>({ calls }, "Test", handler)(call, callback);
  });
}

const handled = async (code: string): Promise<number> =>
  (await metrics.handled.get()).values.find((v) => v.labels.method === "Test" && v.labels.code === code)?.value ?? 0;

describe("wrapUnary", () => {
  it("answers a value, a promise, a synchronous throw and a rejection, each once and counted", async () => {
    const calls = new Calls(metrics, pino({ level: "info" }, { write: () => {} }));
    const now = await callOnce(calls, (req) => ({ answer: `now ${req.name}` }));
    expect(now).toEqual({ err: null, res: { answer: "now n" } });
    const later = await callOnce(calls, (req) => Promise.resolve({ answer: `later ${req.name}` }));
    expect(later).toEqual({ err: null, res: { answer: "later n" } });
    const thrown = await callOnce(calls, (req) => {
      throw new NotFoundError("node", req.name);
    });
    expect(thrown.err).toMatchObject({ code: status.NOT_FOUND, details: 'node "n" not found' });
    const rejected = await callOnce(calls, () => Promise.reject(new NotFoundError("node", "m")));
    expect(rejected.err).toMatchObject({ code: status.NOT_FOUND, details: 'node "m" not found' });
    expect(await handled("OK")).toBe(2);
    expect(await handled("NOT_FOUND")).toBe(2);
  });
});
