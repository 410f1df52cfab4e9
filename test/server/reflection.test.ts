import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { NodeServiceService, type NodeServiceServer } from "../../src/gen/nodeplane/v1/service.js";
import { addHealth, NODE_SERVICE_NAME, type HealthStatus } from "../../src/server/health.js";
import {
  addReflection,
  collectFileDescriptors,
  DESCRIPTOR_SET_FILES,
  fileDescriptorName,
  locateDescriptorSets,
  splitDescriptorSet,
} from "../../src/server/reflection.js";
import { DescriptorCollector, ReflectionError, StrictReflectionClient } from "../support/reflection-client.js";

const NODE = Node.fromPartial({
  metadata: { name: "n1", uid: "u-1", resourceVersion: "7", creationTimestamp: new Date("2024-05-01T12:00:00.250Z") },
  spec: { podCidr: "10.0.1.0/24", podCidrs: ["10.0.1.0/24"] },
  status: { capacity: { cpu: "4" } },
});

/** buf's files from src/gen, by name. */
function genFiles(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const path of locateDescriptorSets()) {
    for (const file of splitDescriptorSet(readFileSync(path))) files.set(fileDescriptorName(file), file);
  }
  return files;
}

function genFile(name: string): Uint8Array {
  const file = genFiles().get(name);
  if (file === undefined) throw new Error(`${name} not in src/gen`);
  return file;
}

describe("reflection served from buf's descriptor sets, read by a strict client", () => {
  let server: grpc.Server;
  let address: string;
  let health: HealthStatus;
  const clients: StrictReflectionClient[] = [];
  const client = (version: "v1" | "v1alpha" = "v1"): StrictReflectionClient => {
    const c = new StrictReflectionClient(address, version);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = new grpc.Server();
    // A stub: only GetNode; grpc-js answers the other methods UNIMPLEMENTED.
    const stub: Pick<NodeServiceServer, "getNode"> = {
      getNode: (call, callback) => {
        if (call.request.name === "n1") callback(null, { node: NODE });
        else callback({ code: grpc.status.NOT_FOUND, details: `node ${call.request.name} not found` });
      },
    };
    server.addService(NodeServiceService, stub);
    health = addHealth(server);
    addReflection(server, undefined, { exclude: ["nodeplane.v1.AgentService"] });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
    health.setServing("", true);
    health.setServing(NODE_SERVICE_NAME, true);
  });

  afterAll(() => {
    for (const c of clients) c.close();
    server.forceShutdown();
  });

  it("lists the services of the descriptors but those excluded, on v1 and v1alpha", async () => {
    const expected = [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "nodeplane.v1.AgentTunnelService",
      "nodeplane.v1.AuthService",
      "nodeplane.v1.NodeProxyService",
      "nodeplane.v1.NodeService",
    ];
    expect(await client("v1").listServices()).toEqual(expected);
    expect(await client("v1alpha").listServices()).toEqual(expected);
  });

  it("resolves NodeService.Register with Timestamp found through the import chain", async () => {
    const c = client();
    const method = await c.resolveMethod("nodeplane.v1.NodeService/Register");
    expect(method.requestType.fullName).toBe(".nodeplane.v1.RegisterRequest");
    expect(method.responseType.fullName).toBe(".nodeplane.v1.RegisterResponse");
    // service.proto imports node.proto, which imports meta.proto and timestamp.proto.
    expect(c.collector.fileNames().sort()).toEqual([
      "google/protobuf/duration.proto",
      "google/protobuf/timestamp.proto",
      "nodeplane/v1/event.proto",
      "nodeplane/v1/lease.proto",
      "nodeplane/v1/meta.proto",
      "nodeplane/v1/node.proto",
      "nodeplane/v1/service.proto",
    ]);
    const { root } = method.descriptors;
    const created = root.lookupType("nodeplane.v1.ObjectMeta").fields["creation_timestamp"];
    expect(created?.resolvedType?.fullName).toBe(".google.protobuf.Timestamp");
    const node = method.requestType.fields["node"];
    expect(node?.resolvedType?.fullName).toBe(".nodeplane.v1.Node");
  });

  it("describes nodeplane.v1.Node", async () => {
    const node = await client("v1alpha").describe("nodeplane.v1.Node");
    expect(node).toBeInstanceOf(protobuf.Type);
    if (!(node instanceof protobuf.Type)) return;
    expect(node.fieldsArray.map((f) => f.name)).toEqual(["metadata", "spec", "status"]);
  });

  it("describes grpc.health.v1.Health from buf's health.proto, map entries included", async () => {
    const c = client();
    const service = await c.describe("grpc.health.v1.Health");
    expect(service).toBeInstanceOf(protobuf.Service);
    if (!(service instanceof protobuf.Service)) return;
    expect(Object.keys(service.methods).sort()).toEqual(["Check", "List", "Watch"]);
    // protobufjs' fromDescriptor turns map fields into repeated entries, so ask the registry.
    const list = c.collector.build().registry.getMessage("grpc.health.v1.HealthListResponse");
    expect(list?.fields.map((f) => [f.name, f.fieldKind])).toEqual([["statuses", "map"]]);
  });

  it("describes the reflection service itself", async () => {
    const service = await client().describe("grpc.reflection.v1.ServerReflection");
    expect(service).toBeInstanceOf(protobuf.Service);
    if (!(service instanceof protobuf.Service)) return;
    expect(Object.keys(service.methods)).toEqual(["ServerReflectionInfo"]);
  });

  it("serves every file byte for byte as buf wrote it", async () => {
    const expected = genFiles();
    for (const version of ["v1", "v1alpha"] as const) {
      const c = client(version);
      for (const name of expected.keys()) await c.loadFile(name);
      for (const [name, bytes] of expected) expect(Buffer.from(c.collector.rawFile(name) ?? [])).toEqual(Buffer.from(bytes));
    }
  });

  it("answers NOT_FOUND for an unknown symbol", async () => {
    const err: unknown = await client()
      .loadSymbol("nodeplane.v1.Nope")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReflectionError);
    expect(err instanceof ReflectionError ? err.code : -1).toBe(grpc.status.NOT_FOUND);
  });

  it("calls GetNode built from reflected types with a JSON request", async () => {
    const c = client();
    const method = await c.resolveMethod("nodeplane.v1.NodeService/GetNode");
    expect(method.requestType.fullName).toBe(".nodeplane.v1.GetNodeRequest");
    const response = await c.callUnary(method, { name: "n1" });
    // Canonical protobuf JSON, as grpcurl prints it.
    expect(response).toEqual({
      node: {
        metadata: { name: "n1", uid: "u-1", resourceVersion: "7", creationTimestamp: "2024-05-01T12:00:00.250Z" },
        spec: { podCidr: "10.0.1.0/24", podCidrs: ["10.0.1.0/24"] },
        status: { capacity: { cpu: "4" } },
      },
    });
    // The protobufjs types decode the same bytes.
    const request = method.requestType.encode(method.requestType.fromObject({ name: "n1" })).finish();
    expect(method.requestType.decode(request).toJSON()).toEqual({ name: "n1" });
    await expect(c.callUnary(method, { name: "n2" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("Health/Check answers SERVING, then NOT_SERVING once set so", async () => {
    const c = client();
    const check = await c.resolveMethod("grpc.health.v1.Health/Check");
    expect(await c.callUnary(check, {})).toEqual({ status: "SERVING" });
    expect(await c.callUnary(check, { service: NODE_SERVICE_NAME })).toEqual({ status: "SERVING" });
    health.setServing(NODE_SERVICE_NAME, false);
    try {
      expect(await c.callUnary(check, { service: NODE_SERVICE_NAME })).toEqual({ status: "NOT_SERVING" });
    } finally {
      health.setServing(NODE_SERVICE_NAME, true);
    }
  });
});

describe("the strict client rejects what grpcurl rejects", () => {
  const base = (): DescriptorCollector => {
    const c = new DescriptorCollector();
    c.add(["google/protobuf/timestamp.proto", "nodeplane/v1/meta.proto"].map(genFile));
    return c;
  };
  const edited = (name: string, edit: (f: FileDescriptorProto) => void): Uint8Array => {
    const file = fromBinary(FileDescriptorProtoSchema, genFile(name));
    edit(file);
    return toBinary(FileDescriptorProtoSchema, file);
  };

  it("accepts buf's files", () => {
    const c = base();
    c.add([genFile("nodeplane/v1/node.proto")]);
    expect(c.build().root.lookupType("nodeplane.v1.Node").fieldsArray).toHaveLength(3);
  });

  it("a file offered twice with different contents", () => {
    const c = base();
    expect(() => c.add([edited("nodeplane/v1/meta.proto", (f) => (f.sourceCodeInfo = undefined))])).toThrow(
      /meta\.proto twice with different contents/,
    );
  });

  it("an import the server does not provide", () => {
    const c = new DescriptorCollector();
    c.add([genFile("nodeplane/v1/node.proto")]);
    expect(() => c.build()).toThrow(/imports not provided by the server: google\/protobuf\/timestamp\.proto/);
  });

  it("a file without its dependency list (proto-loader's descriptors)", () => {
    const c = base();
    c.add([edited("nodeplane/v1/node.proto", (f) => (f.dependency = []))]);
    expect(() => c.build()).toThrow(/"(google\.protobuf\.Timestamp|nodeplane\.v1\.ObjectMeta)" is not defined/);
  });

  it("a type outside the file's imports, and relative type names", () => {
    const relative = (typeName: string): Uint8Array =>
      edited("nodeplane/v1/node.proto", (f) => {
        const field = f.messageType[0]?.field[0];
        if (field) field.typeName = typeName;
      });
    // node.proto does not import lease.proto.
    const lease = new DescriptorCollector();
    lease.add(["google/protobuf/timestamp.proto", "nodeplane/v1/meta.proto", "nodeplane/v1/lease.proto"].map(genFile));
    lease.add([relative("LeaseSpec")]);
    expect(() => lease.build()).toThrow(/"nodeplane\.v1\.LeaseSpec" is not defined \(it is in nodeplane\/v1\/lease\.proto/);
    // Resolvable, but relative: what proto-loader-fed reflection serves; buf never writes it.
    const c = base();
    c.add([relative("ObjectMeta")]);
    expect(() => c.build()).toThrow(/relative type names: .*nodeplane\.v1\.Node\.metadata uses "ObjectMeta"/);
  });

  it("a malformed map entry", () => {
    const c = new DescriptorCollector();
    c.add([genFile("google/protobuf/timestamp.proto")]);
    c.add([
      edited("nodeplane/v1/meta.proto", (f) => {
        const entry = f.messageType[0]?.nestedType.find((n) => n.name === "LabelsEntry");
        const field = f.messageType[0]?.field.find((x) => x.name === "labels");
        if (entry && field) {
          entry.name = "LabelEntry";
          field.typeName = ".nodeplane.v1.ObjectMeta.LabelEntry";
        }
      }),
    ]);
    expect(() => c.build()).toThrow(/map_entry should not be set explicitly/);
  });
});

describe("descriptor sets for addReflection", () => {
  it("are found beside the module in src/gen and, from dist/src/server, in the repo's src/gen", () => {
    const fromSource = locateDescriptorSets();
    expect(fromSource).toEqual(DESCRIPTOR_SET_FILES.map((n) => fileURLToPath(new URL(`../../src/gen/${n}`, import.meta.url))));
    const fromDist = locateDescriptorSets(DESCRIPTOR_SET_FILES, new URL("../../dist/src/server/reflection.js", import.meta.url).href);
    for (const path of fromDist) expect(path).toMatch(/\/(dist\/)?src\/gen\/(nodeplane|health)\.binpb$/);
  });

  it("take each file from one source: identical copies merge, differing copies are an error", () => {
    const set = readFileSync(locateDescriptorSets()[0] ?? "");
    expect(collectFileDescriptors([{ source: "a", bytes: set }, { source: "b", bytes: set }]).size).toBe(splitDescriptorSet(set).length);
    const meta = fromBinary(FileDescriptorProtoSchema, genFile("nodeplane/v1/meta.proto"));
    meta.sourceCodeInfo = undefined;
    const other = Buffer.concat([Buffer.from([0x0a, ...varint(toBinary(FileDescriptorProtoSchema, meta).length)]), toBinary(FileDescriptorProtoSchema, meta)]);
    expect(() => collectFileDescriptors([{ source: "a", bytes: set }, { source: "b", bytes: other }])).toThrow(
      /nodeplane\/v1\/meta\.proto differs between a and b/,
    );
  });
});

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}
