/**
 * A server without TLS has no control-plane certificate and dials no agent: the node proxy says
 * so with FAILED_PRECONDITION (the server's configuration; retrying cannot help), naming the
 * flags — it answered UNAVAILABLE, which clients retry and the fuzz suite read as a failing server.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { ProxyClient } from "../../src/client/proxy-client.js";
import { FailedPreconditionError } from "../../src/client/errors.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

let h: Harness;
let proxy: ProxyClient;
beforeAll(async () => {
  h = await startHarness();
  proxy = new ProxyClient(`127.0.0.1:${h.server.port}`);
  await h.client.register(agentNode("n1", { status: { daemonEndpoints: { agentEndpoint: { port: 10250 } } } }));
});
afterAll(async () => {
  proxy.close();
  await h.close();
});

it("answers FAILED_PRECONDITION naming the flags for a node it could otherwise reach", async () => {
  const err = await proxy.getNodeUsage("n1").catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FailedPreconditionError);
  expect((err as Error).message).toMatch(/cannot dial agents: .*serve with --tls/);
});
