/**
 * A strict gRPC reflection client for tests, behaving like grpcurl: it lists services, fetches
 * the file defining a symbol, then every import by file name, and builds descriptors that must
 * resolve completely. It checks what protoc's descriptor builder (used by grpcurl's Go
 * protodesc and Python's descriptor pool) checks, so a test passing here means a grpcurl user
 * can list, describe and call — not merely that ListServices answers.
 *
 * It speaks the reflection protocol with a hand codec rather than through @grpc/reflection or
 * proto-loader, so it shares no code with the server under test.
 */
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
// Side effect: adds Root.fromDescriptor (absent from protobufjs' typings, hence the narrowing).
import "protobufjs/ext/descriptor/index.js";
import {
  createFileRegistry,
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type FileRegistry,
  type JsonValue,
} from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";

export type ReflectionVersion = "v1" | "v1alpha";

/** An error_response from the server (e.g. NOT_FOUND for an unknown symbol). */
export class ReflectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "ReflectionError";
  }
}

// --- descriptors -------------------------------------------------------------------------

type SymbolKind = "message" | "enum" | "service";

interface SymbolEntry {
  kind: SymbolKind;
  file: string;
}

export interface BuiltDescriptors {
  /** protobufjs types, built with Root.fromDescriptor and resolveAll(). */
  root: protobuf.Root;
  /**
   * The same files as a @bufbuild/protobuf registry: canonical JSON, as grpcurl speaks it, and
   * real map fields (protobufjs' fromDescriptor leaves maps as repeated *Entry messages).
   */
  registry: FileRegistry;
}

/** protoc's ToCamelCase(name, lower_first=false), which names a map field's entry type. */
function mapEntryName(fieldName: string): string {
  const camel = fieldName.replace(/_+([a-zA-Z0-9])/g, (_m: string, c: string) => c.toUpperCase());
  return camel.charAt(0).toUpperCase() + camel.slice(1) + "Entry";
}

/**
 * The files a server offered, by name. Adding a file a second time with different bytes
 * fails (grpcurl rejects that too); build() fails on a missing import, an unresolved or
 * invisible type name, or a malformed map entry.
 */
export class DescriptorCollector {
  private readonly raw = new Map<string, Uint8Array>();
  private readonly decoded = new Map<string, FileDescriptorProto>();

  add(blobs: Iterable<Uint8Array>): void {
    for (const blob of blobs) {
      const file = fromBinary(FileDescriptorProtoSchema, blob);
      if (file.name === "") throw new Error("server offered a FileDescriptorProto without a name");
      const seen = this.raw.get(file.name);
      if (seen === undefined) {
        this.raw.set(file.name, blob);
        this.decoded.set(file.name, file);
      } else if (!Buffer.from(seen).equals(blob)) {
        throw new Error(`server offered ${file.name} twice with different contents`);
      }
    }
  }

  has(name: string): boolean {
    return this.raw.has(name);
  }

  fileNames(): string[] {
    return [...this.raw.keys()];
  }

  /** The bytes the server sent for a file. */
  rawFile(name: string): Uint8Array | undefined {
    return this.raw.get(name);
  }

  /** Imports of loaded files that are not loaded themselves. */
  missingImports(): string[] {
    const missing = new Set<string>();
    for (const file of this.decoded.values()) {
      for (const dep of file.dependency) if (!this.raw.has(dep)) missing.add(dep);
    }
    return [...missing];
  }

  /** Validates every loaded file and builds descriptors from them (throws on any problem). */
  build(): BuiltDescriptors {
    const missing = this.missingImports();
    if (missing.length > 0) throw new Error(`imports not provided by the server: ${missing.join(", ")}`);
    const symbols = this.indexSymbols();
    const relative: string[] = [];
    for (const file of this.decoded.values()) relative.push(...this.checkFile(file, symbols));
    // protoc's builder (so grpcurl) resolves relative names, but @bufbuild/protobuf's registry
    // does not, and protoc and buf always write absolute ones: relative names are what
    // proto-loader-fed reflection serves (grpc-node #2595). Checked last, so that what grpcurl
    // itself would say about such descriptors ("... is not defined") is reported first.
    if (relative.length > 0) throw new Error(`relative type names: ${relative.join("; ")}`);

    const order = this.dependencyOrder();
    const writer = new BinaryWriter();
    for (const name of order) {
      const bytes = this.raw.get(name);
      if (bytes !== undefined) writer.tag(1, WireType.LengthDelimited).bytes(bytes);
    }
    const set = writer.finish();

    const fromDescriptor: unknown = Reflect.get(protobuf.Root, "fromDescriptor");
    if (typeof fromDescriptor !== "function") throw new Error("protobufjs/ext/descriptor did not load");
    const root: unknown = fromDescriptor.call(protobuf.Root, set);
    if (!(root instanceof protobuf.Root)) throw new Error("Root.fromDescriptor returned no Root");
    // fromDescriptor resolves already; again explicitly, as this is the point of the exercise.
    root.resolveAll();
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, set));
    return { root, registry };
  }

  /** Files in an order where every import precedes its importers. */
  private dependencyOrder(): string[] {
    const order: string[] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (name: string, path: string[]): void => {
      const s = state.get(name);
      if (s === "done") return;
      if (s === "visiting") throw new Error(`import cycle: ${[...path, name].join(" -> ")}`);
      state.set(name, "visiting");
      for (const dep of this.decoded.get(name)?.dependency ?? []) visit(dep, [...path, name]);
      state.set(name, "done");
      order.push(name);
    };
    for (const name of this.decoded.keys()) visit(name, []);
    return order;
  }

  private indexSymbols(): Map<string, SymbolEntry> {
    const symbols = new Map<string, SymbolEntry>();
    const define = (fullName: string, kind: SymbolKind, file: string): void => {
      const other = symbols.get(fullName);
      if (other !== undefined) throw new Error(`${fullName.slice(1)} is defined in both ${other.file} and ${file}`);
      symbols.set(fullName, { kind, file });
    };
    const defineMessage = (scope: string, message: DescriptorProto, file: string): void => {
      const name = `${scope}.${message.name}`;
      define(name, "message", file);
      for (const nested of message.nestedType) defineMessage(name, nested, file);
      for (const e of message.enumType) define(`${name}.${e.name}`, "enum", file);
    };
    for (const file of this.decoded.values()) {
      const scope = file.package === "" ? "" : `.${file.package}`;
      for (const message of file.messageType) defineMessage(scope, message, file.name);
      for (const e of file.enumType) define(`${scope}.${e.name}`, "enum", file.name);
      for (const s of file.service) define(`${scope}.${s.name}`, "service", file.name);
    }
    return symbols;
  }

  /** A file sees its own symbols, its imports', and what those re-export with `import public`. */
  private visibleFiles(file: FileDescriptorProto): Set<string> {
    const visible = new Set<string>([file.name]);
    const addPublic = (name: string): void => {
      if (visible.has(name)) return;
      visible.add(name);
      const dep = this.decoded.get(name);
      if (dep === undefined) return;
      for (const index of dep.publicDependency) {
        const pub = dep.dependency[index];
        if (pub === undefined) throw new Error(`${dep.name}: public_dependency ${index} out of range`);
        addPublic(pub);
      }
    };
    for (const dep of file.dependency) addPublic(dep);
    return visible;
  }

  /** Throws on an unresolvable reference or bad map entry; returns uses of relative names. */
  private checkFile(file: FileDescriptorProto, symbols: Map<string, SymbolEntry>): string[] {
    const visible = this.visibleFiles(file);
    const relative: string[] = [];
    /**
     * A type name as protoc's builder reads it: ".a.b.C" is absolute; anything else is looked
     * up from `scope` outwards (protoc itself always writes absolute names).
     */
    const qualify = (typeName: string, scope: string): string | undefined => {
      if (typeName.startsWith(".")) return symbols.has(typeName) ? typeName : undefined;
      for (let s = scope; ; s = s.slice(0, Math.max(0, s.lastIndexOf(".")))) {
        if (symbols.has(`${s}.${typeName}`)) return `${s}.${typeName}`;
        if (s === "") return undefined;
      }
    };
    // Reports in grpcurl's words: a type outside the file's imports "is not defined" to it.
    const ref = (typeName: string, scope: string, kinds: SymbolKind[], where: string): void => {
      const fullName = qualify(typeName, scope);
      const entry = fullName === undefined ? undefined : symbols.get(fullName);
      const shown = fullName?.slice(1) ?? typeName.replace(/^\./, "");
      if (entry === undefined) throw new Error(`${file.name}: ${where}: "${shown}" is not defined`);
      if (!visible.has(entry.file)) {
        throw new Error(`${file.name}: ${where}: "${shown}" is not defined (it is in ${entry.file}, which is not imported)`);
      }
      if (!kinds.includes(entry.kind)) throw new Error(`${file.name}: ${where}: "${shown}" is not a ${kinds.join(" or ")}`);
      if (!typeName.startsWith(".")) relative.push(`${file.name}: ${where} uses "${typeName}"`);
    };
    const checkField = (field: FieldDescriptorProto, scope: string, where: string): void => {
      switch (field.type) {
        case FieldDescriptorProto_Type.MESSAGE:
        case FieldDescriptorProto_Type.GROUP:
          ref(field.typeName, scope, ["message"], where);
          break;
        case FieldDescriptorProto_Type.ENUM:
          ref(field.typeName, scope, ["enum"], where);
          break;
        default:
          // An unset type with a type_name is legal: the builder looks the name up.
          if (field.typeName !== "") ref(field.typeName, scope, ["message", "enum"], where);
      }
      if (field.extendee !== "") ref(field.extendee, scope, ["message"], `${where} (extendee)`);
    };
    const checkMessage = (scope: string, message: DescriptorProto): void => {
      const name = `${scope}.${message.name}`;
      for (const field of message.field) checkField(field, name, `field ${name.slice(1)}.${field.name}`);
      for (const ext of message.extension) checkField(ext, name, `extension ${name.slice(1)}.${ext.name}`);
      for (const nested of message.nestedType) {
        if (nested.options?.mapEntry === true) checkMapEntry(name, message, nested);
        checkMessage(name, nested);
      }
    };
    // What protoc's ValidateMapEntry demands; Python's pool reports a violation as
    // "map_entry should not be set explicitly".
    const checkMapEntry = (parentName: string, parent: DescriptorProto, entry: DescriptorProto): void => {
      const entryName = `${parentName}.${entry.name}`;
      const users = parent.field.filter((f) => f.typeName !== "" && qualify(f.typeName, parentName) === entryName);
      const user = users[0];
      const [key, value] = entry.field;
      const ok =
        users.length === 1 &&
        user !== undefined &&
        user.label === FieldDescriptorProto_Label.REPEATED &&
        entry.name === mapEntryName(user.name) &&
        entry.field.length === 2 &&
        key !== undefined &&
        value !== undefined &&
        key.name === "key" &&
        key.number === 1 &&
        value.name === "value" &&
        value.number === 2 &&
        entry.field.every((f) => f.label === FieldDescriptorProto_Label.OPTIONAL) &&
        entry.nestedType.length === 0 &&
        entry.enumType.length === 0 &&
        entry.extension.length === 0;
      if (!ok) throw new Error(`${file.name}: ${entryName.slice(1)}: map_entry should not be set explicitly`);
    };

    const scope = file.package === "" ? "" : `.${file.package}`;
    for (const message of file.messageType) checkMessage(scope, message);
    for (const ext of file.extension) checkField(ext, scope, `extension ${ext.name}`);
    for (const service of file.service) {
      for (const method of service.method) {
        const where = `method ${scope.slice(1)}.${service.name}.${method.name}`;
        ref(method.inputType, scope, ["message"], `${where} input`);
        ref(method.outputType, scope, ["message"], `${where} output`);
      }
    }
    return relative;
  }
}

// --- reflection protocol codec (grpc/reflection/v1/reflection.proto; v1alpha is identical) ---

type ReflectionRequest = { listServices: string } | { fileByFilename: string } | { fileContainingSymbol: string };

type ReflectionAnswer = { kind: "services"; names: string[] } | { kind: "files"; files: Uint8Array[] };

function encodeRequest(request: ReflectionRequest): Buffer {
  const writer = new BinaryWriter();
  if ("fileByFilename" in request) writer.tag(3, WireType.LengthDelimited).string(request.fileByFilename);
  else if ("fileContainingSymbol" in request) writer.tag(4, WireType.LengthDelimited).string(request.fileContainingSymbol);
  else writer.tag(7, WireType.LengthDelimited).string(request.listServices);
  return Buffer.from(writer.finish());
}

/**
 * Calls `each` for every length-delimited field of a message (all this protocol's answers
 * are, except ErrorResponse.error_code); `each` reads the field, or returns false to skip it.
 */
function readFields(bytes: Uint8Array, each: (fieldNo: number, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (wireType !== WireType.LengthDelimited || !each(fieldNo, reader)) reader.skip(wireType, fieldNo);
  }
}

function decodeResponse(bytes: Uint8Array): ReflectionAnswer {
  let answer: ReflectionAnswer | undefined;
  let error: ReflectionError | undefined;
  readFields(bytes, (fieldNo, reader) => {
    switch (fieldNo) {
      case 4: {
        // FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
        const files: Uint8Array[] = [];
        readFields(reader.bytes(), (n, r) => (n === 1 ? (files.push(r.bytes()), true) : false));
        answer = { kind: "files", files };
        return true;
      }
      case 6: {
        // ListServiceResponse { repeated ServiceResponse service = 1; } ServiceResponse { string name = 1; }
        const names: string[] = [];
        readFields(reader.bytes(), (n, r) => {
          if (n !== 1) return false;
          readFields(r.bytes(), (m, s) => (m === 1 ? (names.push(s.string()), true) : false));
          return true;
        });
        answer = { kind: "services", names };
        return true;
      }
      case 7: {
        // ErrorResponse { int32 error_code = 1; string error_message = 2; }
        let code = 0;
        let message = "";
        const r = new BinaryReader(reader.bytes());
        while (r.pos < r.len) {
          const [n, wt] = r.tag();
          if (n === 1 && wt === WireType.Varint) code = r.int32();
          else if (n === 2 && wt === WireType.LengthDelimited) message = r.string();
          else r.skip(wt, n);
        }
        error = new ReflectionError(code, message);
        return true;
      }
      default:
        return false;
    }
  });
  if (error !== undefined) throw error;
  if (answer === undefined) throw new Error("reflection response carries no answer");
  return answer;
}

// --- client ------------------------------------------------------------------------------

export interface ResolvedMethod {
  /** "/pkg.Service/Method", the HTTP/2 path. */
  path: string;
  service: string;
  name: string;
  requestStream: boolean;
  responseStream: boolean;
  /** protobufjs types from the reflected descriptors. */
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  /** The same types for canonical JSON (@bufbuild/protobuf). */
  requestDesc: DescMessage;
  responseDesc: DescMessage;
  descriptors: BuiltDescriptors;
}

export class StrictReflectionClient {
  readonly collector = new DescriptorCollector();
  private readonly client: grpc.Client;
  private readonly path: string;

  constructor(
    address: string,
    version: ReflectionVersion = "v1",
    private readonly timeoutMs = 10_000,
  ) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    this.path = `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`;
  }

  close(): void {
    this.client.close();
  }

  /** One request on its own stream (as rpcurl does; grpcurl keeps one stream per session). */
  private ask(request: ReflectionRequest): Promise<ReflectionAnswer> {
    return new Promise<ReflectionAnswer>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (!settled) {
          settled = true;
          fn();
        }
      };
      const call = this.client.makeBidiStreamRequest<Buffer, Buffer>(
        this.path,
        (value) => value,
        (value) => value,
        { deadline: Date.now() + this.timeoutMs },
      );
      call.on("data", (chunk: Buffer) => {
        settle(() => {
          try {
            resolve(decodeResponse(chunk));
          } catch (err: unknown) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      });
      call.on("error", (err: Error) => settle(() => reject(err)));
      call.on("end", () => settle(() => reject(new Error("reflection stream ended without an answer"))));
      call.write(encodeRequest(request));
      call.end();
    });
  }

  private async askFiles(request: ReflectionRequest): Promise<Uint8Array[]> {
    const answer = await this.ask(request);
    if (answer.kind !== "files") throw new Error("expected a file_descriptor_response");
    return answer.files;
  }

  async listServices(): Promise<string[]> {
    const answer = await this.ask({ listServices: "" });
    if (answer.kind !== "services") throw new Error("expected a list_services_response");
    return [...answer.names].sort();
  }

  /** file_containing_symbol, then file_by_filename for every import still missing. */
  async loadSymbol(symbol: string): Promise<void> {
    this.collector.add(await this.askFiles({ fileContainingSymbol: symbol }));
    await this.loadImports();
  }

  async loadFile(name: string): Promise<void> {
    if (!this.collector.has(name)) this.collector.add(await this.askFiles({ fileByFilename: name }));
    await this.loadImports();
  }

  private async loadImports(): Promise<void> {
    for (let missing = this.collector.missingImports(); missing.length > 0; missing = this.collector.missingImports()) {
      for (const name of missing) this.collector.add(await this.askFiles({ fileByFilename: name }));
    }
  }

  /** The reflected definition of a message, enum or service (loads it if need be). */
  async describe(symbol: string): Promise<protobuf.Type | protobuf.Enum | protobuf.Service> {
    await this.loadSymbol(symbol);
    const found = this.collector.build().root.lookup(symbol);
    if (found instanceof protobuf.Type || found instanceof protobuf.Enum || found instanceof protobuf.Service) return found;
    throw new Error(`${symbol} is not a message, enum or service`);
  }

  /** "pkg.Service/Method" or "pkg.Service.Method", resolved as grpcurl does before a call. */
  async resolveMethod(fullName: string): Promise<ResolvedMethod> {
    const cut = fullName.includes("/") ? fullName.lastIndexOf("/") : fullName.lastIndexOf(".");
    const service = fullName.slice(0, cut);
    const name = fullName.slice(cut + 1);
    await this.loadSymbol(service);
    const descriptors = this.collector.build();
    const method = descriptors.root.lookupService(service).methods[name];
    if (method === undefined) throw new Error(`service ${service} has no method ${name}`);
    method.resolve();
    const requestType = method.resolvedRequestType;
    const responseType = method.resolvedResponseType;
    if (requestType === null || responseType === null) throw new Error(`${fullName}: unresolved types`);
    const requestDesc = descriptors.registry.getMessage(requestType.fullName.slice(1));
    const responseDesc = descriptors.registry.getMessage(responseType.fullName.slice(1));
    if (requestDesc === undefined || responseDesc === undefined) throw new Error(`${fullName}: types missing from registry`);
    return {
      path: `/${service}/${name}`,
      service,
      name,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestType,
      responseType,
      requestDesc,
      responseDesc,
      descriptors,
    };
  }

  /** A unary call with canonical protobuf JSON in and out, like `grpcurl -d '{...}'`. */
  callUnary(method: ResolvedMethod, request: JsonValue, metadata = new grpc.Metadata()): Promise<JsonValue> {
    if (method.requestStream || method.responseStream) throw new Error(`${method.path} is not unary`);
    const { registry } = method.descriptors;
    const body = toBinary(method.requestDesc, fromJson(method.requestDesc, request, { registry }));
    return new Promise<JsonValue>((resolve, reject) => {
      this.client.makeUnaryRequest<Uint8Array, Buffer>(
        method.path,
        (value) => Buffer.from(value),
        (value) => value,
        body,
        metadata,
        { deadline: Date.now() + this.timeoutMs },
        (err, value) => {
          if (err) return reject(err);
          if (value === undefined) return reject(new Error(`${method.path}: no response`));
          try {
            resolve(toJson(method.responseDesc, fromBinary(method.responseDesc, value), { registry }));
          } catch (e: unknown) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        },
      );
    });
  }
}
