/**
 * Issue 11, defect 1: a map key with a non-ASCII character (label "ü", annotation "café",
 * capacity "µcpu") used to stop the server: the error map put the raw field path into an ASCII
 * metadata value and grpc-js threw while sending the status. Every write that carries each kind
 * of map is tried here; each must answer INVALID_ARGUMENT naming the field, in the message and in
 * the standard grpc-status-details-bin trailer, and the server must answer the next call.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeInput } from "../../src/client/client.js";
import { InvalidArgumentError, type RpcError } from "../../src/client/errors.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.client.createNode(agentNode("existing"));
});
afterAll(() => h.close());

type MapKind = "labels" | "annotations" | "capacity" | "allocatable";

const KEYS: Record<MapKind, string> = { labels: "ü", annotations: "café", capacity: "µcpu", allocatable: "gpu/ñ" };
const PATHS: Record<MapKind, string> = {
  labels: "metadata.labels",
  annotations: "metadata.annotations",
  capacity: "status.capacity",
  allocatable: "status.allocatable",
};

/** A node named `name` with one bad key in the map of `kind`. */
function nodeWith(kind: MapKind, name: string): NodeInput {
  const key = KEYS[kind];
  const base = agentNode(name);
  if (kind === "labels" || kind === "annotations") return { ...base, metadata: { ...base.metadata, [kind]: { [key]: "v" } } };
  return { ...base, status: { ...base.status, [kind]: { [key]: "1" } } };
}

type Call = (kind: MapKind) => Promise<unknown>;

const CALLS: Record<string, { kinds: MapKind[]; call: Call }> = {
  Register: { kinds: ["labels", "annotations", "capacity", "allocatable"], call: (k) => h.client.register(nodeWith(k, "reg")) },
  CreateNode: { kinds: ["labels", "annotations", "capacity", "allocatable"], call: (k) => h.client.createNode(nodeWith(k, "made")) },
  // UpdateNode ignores the status; UpdateStatus carries only the status.
  UpdateNode: { kinds: ["labels", "annotations"], call: (k) => h.client.updateNode(nodeWith(k, "existing")) },
  UpdateStatus: { kinds: ["capacity", "allocatable"], call: (k) => h.client.updateStatus("existing", nodeWith(k, "existing").status!) },
};

const cases = Object.entries(CALLS).flatMap(([rpc, { kinds, call }]) => kinds.map((kind) => ({ rpc, kind, call })));

describe("a non-ASCII map key", () => {
  it.each(cases)("$rpc with a $kind key: INVALID_ARGUMENT naming the field, and the server lives", async ({ kind, call }) => {
    const before = await h.server.store.currentRevision();
    const err = (await call(kind).catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    const field = `${PATHS[kind]}[${JSON.stringify(KEYS[kind])}]`;
    expect(err.details).toContain(field);
    expect(err.fieldViolations.map((v) => v.field)).toContain(field);
    expect(err.fieldViolations.find((v) => v.field === field)?.description).toMatch(/must/);
    // Alive, and nothing was written.
    expect((await h.client.getNode("existing")).metadata?.name).toBe("existing");
    expect(await h.server.store.currentRevision()).toBe(before);
  });
});
