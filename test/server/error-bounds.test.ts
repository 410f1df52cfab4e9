/**
 * Issue 11, defect 4: error text is bounded. 10,000 invalid labels used to give an 837 KB
 * message in the trailers: a default Python grpcio client refused it ("metadata size exceeds
 * limit") and the SDK waited out its deadline. Now the answer names the first violations and
 * counts the rest, in the message and in the google.rpc.Status trailer, which Debian's grpcio
 * (a client that shares no code with ours) receives and parses as the standard messages.
 */
import { execFile } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError, type RpcError } from "../../src/client/errors.js";
import { RegisterRequest } from "../../src/gen/nodeplane/v1/service.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

/** 10,000 labels whose keys (and, with `badValues`, values) break the rules. */
function badLabels(badValues: boolean): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = 0; i < 10_000; i++) labels[`bad key ${i}`] = badValues ? `bad value ${i}!` : "ok";
  return labels;
}

/**
 * Calls Register with the request's bytes through Debian's python3-grpcio with its default
 * limits, and parses grpc-status-details-bin as google.rpc.Status / BadRequest with protobuf's
 * own parser (the two messages declared from Google's field numbers). Prints a JSON summary.
 */
const PYTHON = String.raw`
import base64, json, sys
import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

def google_rpc_pool():
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(any_pb2.DESCRIPTOR.serialized_pb))
    f = descriptor_pb2.FileDescriptorProto(name="google/rpc/test.proto", package="google.rpc", syntax="proto3",
                                           dependency=["google/protobuf/any.proto"])
    T = descriptor_pb2.FieldDescriptorProto
    status = f.message_type.add(name="Status")
    status.field.add(name="code", number=1, type=T.TYPE_INT32, label=T.LABEL_OPTIONAL)
    status.field.add(name="message", number=2, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    status.field.add(name="details", number=3, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED, type_name=".google.protobuf.Any")
    bad = f.message_type.add(name="BadRequest")
    fv = bad.nested_type.add(name="FieldViolation")
    fv.field.add(name="field", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    fv.field.add(name="description", number=2, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    bad.field.add(name="field_violations", number=1, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                  type_name=".google.rpc.BadRequest.FieldViolation")
    pool.Add(f)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(n)) if hasattr(message_factory, "GetMessageClass") else message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName(n))
    return get("google.rpc.Status"), get("google.rpc.BadRequest")

Status, BadRequest = google_rpc_pool()
addr, request = sys.argv[1], base64.b64decode(sys.stdin.read())
call = grpc.insecure_channel(addr).unary_unary("/nodeplane.v1.NodeService/Register")
try:
    call(request, timeout=20)
    print(json.dumps({"code": "OK"}))
except grpc.RpcError as e:
    out = {"code": e.code().name, "details": e.details(), "violations": []}
    for key, value in e.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            st = Status.FromString(value)
            out["statusCode"] = st.code
            for d in st.details:
                if d.type_url == "type.googleapis.com/google.rpc.BadRequest":
                    out["violations"] += [v.field for v in BadRequest.FromString(d.value).field_violations]
    print(json.dumps(out))
`;

function python(address: string, request: Uint8Array): Promise<{ code: string; details?: string; statusCode?: number; violations?: string[] }> {
  return new Promise((resolve, reject) => {
    const child = execFile("/usr/bin/python3", ["-c", PYTHON, address], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python3 failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as { code: string });
    });
    // A client that fails to start (no grpcio) closes its stdin early: execFile's callback reports it.
    child.stdin!.on("error", () => {});
    child.stdin!.end(Buffer.from(request).toString("base64"));
  });
}

describe("bounded error text", () => {
  it.each([
    { what: "10,000 labels with bad keys", badValues: false, violations: 10_000 },
    { what: "10,000 labels with bad keys and bad values", badValues: true, violations: 30_000 },
  ])("$what: the SDK gets INVALID_ARGUMENT with the first violations and a count of the rest", async ({ badValues, violations }) => {
    const before = await h.server.store.currentRevision();
    // A deadline well under the 30 s the SDK used to wait out before DEADLINE_EXCEEDED.
    const err = (await h.client
      .register(agentNode("many", { metadata: { name: "many", labels: badLabels(badValues) } }), { timeoutMs: 10_000 })
      .catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(Buffer.byteLength(err.details)).toBeLessThanOrEqual(2048 + 100);
    expect(err.details).toMatch(/^metadata\.labels\["bad key 0"\]: "bad key 0": key must consist of/);
    const counted = /; and (\d+) more \((\d+) violations in all\)$/.exec(err.details);
    expect(counted && [Number(counted[1]) + err.fieldViolations.length, Number(counted[2])]).toEqual([violations, violations]);
    expect(err.fieldViolations.length).toBeGreaterThan(0);
    expect(err.fieldViolations.length).toBeLessThanOrEqual(20);
    expect(err.fieldViolations[0]!.field).toBe('metadata.labels["bad key 0"]');
    expect(await h.server.store.currentRevision()).toBe(before);
  });

  it("a default Python grpcio client gets INVALID_ARGUMENT and parses the google.rpc.Status trailer", async () => {
    const node = Node.fromPartial(agentNode("many", { metadata: { name: "many", labels: badLabels(true) } }));
    const request = RegisterRequest.encode({ node }).finish();
    const out = await python(`127.0.0.1:${h.server.port}`, request);
    expect(out.code).toBe("INVALID_ARGUMENT");
    expect(out.details).toContain("violations in all");
    expect(out.statusCode).toBe(3);
    expect(out.violations?.[0]).toBe('metadata.labels["bad key 0"]');
    // …and with a non-ASCII key the trailers stay within grpcio's default 8 KiB too.
    const accented = Node.fromPartial(agentNode("many", { metadata: { name: "many", labels: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`clé-ü-${i}-€`, "é"])) } }));
    const again = await python(`127.0.0.1:${h.server.port}`, RegisterRequest.encode({ node: accented }).finish());
    expect(again.code).toBe("INVALID_ARGUMENT");
    expect(again.violations?.[0]).toBe('metadata.labels["clé-ü-0-€"]');
  });
});
