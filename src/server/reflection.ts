/**
 * gRPC server reflection that strict clients (grpcurl, Python's descriptor pool) accept.
 *
 * @grpc/reflection fed a proto-loader package definition serves descriptors without their
 * `dependency` lists and with relative type names, so grpcurl fails ("google.protobuf.Timestamp
 * is not defined"). Instead we hand it the FileDescriptorProtos exactly as buf wrote them
 * (`npm run gen` → src/gen/*.binpb), one source per file name.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** The descriptor sets `npm run gen` writes, served by default. */
export const DESCRIPTOR_SET_FILES: readonly string[] = ["nodeplane.binpb", "health.binpb"];

/**
 * grpc/reflection/v1/reflection.proto and grpc/reflection/v1alpha/reflection.proto as a
 * FileDescriptorSet, so the reflection service can describe itself like grpc-go's does.
 * Embedded rather than generated because `npm run gen` does not build them; regenerate with
 *   cp -r node_modules/@grpc/reflection/build/proto/grpc /tmp/r/ && cd /tmp/r &&
 *   buf build . --exclude-source-info --as-file-descriptor-set -o refl.binpb && base64 -w96 refl.binpb
 * (@grpc/reflection 1.0.4's copies of the protos; the wire contract has been frozen since 2016).
 */
const REFLECTION_DESCRIPTOR_SET_BASE64 =
  "CtANCiNncnBjL3JlZmxlY3Rpb24vdjEvcmVmbGVjdGlvbi5wcm90bxISZ3JwYy5yZWZsZWN0aW9uLnYxIvMCChdTZXJ2ZXJS" +
  "ZWZsZWN0aW9uUmVxdWVzdBISCgRob3N0GAEgASgJUgRob3N0EioKEGZpbGVfYnlfZmlsZW5hbWUYAyABKAlIAFIOZmlsZUJ5" +
  "RmlsZW5hbWUSNgoWZmlsZV9jb250YWluaW5nX3N5bWJvbBgEIAEoCUgAUhRmaWxlQ29udGFpbmluZ1N5bWJvbBJiChlmaWxl" +
  "X2NvbnRhaW5pbmdfZXh0ZW5zaW9uGAUgASgLMiQuZ3JwYy5yZWZsZWN0aW9uLnYxLkV4dGVuc2lvblJlcXVlc3RIAFIXZmls" +
  "ZUNvbnRhaW5pbmdFeHRlbnNpb24SQgodYWxsX2V4dGVuc2lvbl9udW1iZXJzX29mX3R5cGUYBiABKAlIAFIZYWxsRXh0ZW5z" +
  "aW9uTnVtYmVyc09mVHlwZRIlCg1saXN0X3NlcnZpY2VzGAcgASgJSABSDGxpc3RTZXJ2aWNlc0IRCg9tZXNzYWdlX3JlcXVl" +
  "c3QiZgoQRXh0ZW5zaW9uUmVxdWVzdBInCg9jb250YWluaW5nX3R5cGUYASABKAlSDmNvbnRhaW5pbmdUeXBlEikKEGV4dGVu" +
  "c2lvbl9udW1iZXIYAiABKAVSD2V4dGVuc2lvbk51bWJlciKuBAoYU2VydmVyUmVmbGVjdGlvblJlc3BvbnNlEh0KCnZhbGlk" +
  "X2hvc3QYASABKAlSCXZhbGlkSG9zdBJWChBvcmlnaW5hbF9yZXF1ZXN0GAIgASgLMisuZ3JwYy5yZWZsZWN0aW9uLnYxLlNl" +
  "cnZlclJlZmxlY3Rpb25SZXF1ZXN0Ug9vcmlnaW5hbFJlcXVlc3QSZgoYZmlsZV9kZXNjcmlwdG9yX3Jlc3BvbnNlGAQgASgL" +
  "MiouZ3JwYy5yZWZsZWN0aW9uLnYxLkZpbGVEZXNjcmlwdG9yUmVzcG9uc2VIAFIWZmlsZURlc2NyaXB0b3JSZXNwb25zZRJy" +
  "Ch5hbGxfZXh0ZW5zaW9uX251bWJlcnNfcmVzcG9uc2UYBSABKAsyKy5ncnBjLnJlZmxlY3Rpb24udjEuRXh0ZW5zaW9uTnVt" +
  "YmVyUmVzcG9uc2VIAFIbYWxsRXh0ZW5zaW9uTnVtYmVyc1Jlc3BvbnNlEl8KFmxpc3Rfc2VydmljZXNfcmVzcG9uc2UYBiAB" +
  "KAsyJy5ncnBjLnJlZmxlY3Rpb24udjEuTGlzdFNlcnZpY2VSZXNwb25zZUgAUhRsaXN0U2VydmljZXNSZXNwb25zZRJKCg5l" +
  "cnJvcl9yZXNwb25zZRgHIAEoCzIhLmdycGMucmVmbGVjdGlvbi52MS5FcnJvclJlc3BvbnNlSABSDWVycm9yUmVzcG9uc2VC" +
  "EgoQbWVzc2FnZV9yZXNwb25zZSJMChZGaWxlRGVzY3JpcHRvclJlc3BvbnNlEjIKFWZpbGVfZGVzY3JpcHRvcl9wcm90bxgB" +
  "IAMoDFITZmlsZURlc2NyaXB0b3JQcm90byJqChdFeHRlbnNpb25OdW1iZXJSZXNwb25zZRIkCg5iYXNlX3R5cGVfbmFtZRgB" +
  "IAEoCVIMYmFzZVR5cGVOYW1lEikKEGV4dGVuc2lvbl9udW1iZXIYAiADKAVSD2V4dGVuc2lvbk51bWJlciJUChNMaXN0U2Vy" +
  "dmljZVJlc3BvbnNlEj0KB3NlcnZpY2UYASADKAsyIy5ncnBjLnJlZmxlY3Rpb24udjEuU2VydmljZVJlc3BvbnNlUgdzZXJ2" +
  "aWNlIiUKD1NlcnZpY2VSZXNwb25zZRISCgRuYW1lGAEgASgJUgRuYW1lIlMKDUVycm9yUmVzcG9uc2USHQoKZXJyb3JfY29k" +
  "ZRgBIAEoBVIJZXJyb3JDb2RlEiMKDWVycm9yX21lc3NhZ2UYAiABKAlSDGVycm9yTWVzc2FnZTKJAQoQU2VydmVyUmVmbGVj" +
  "dGlvbhJ1ChRTZXJ2ZXJSZWZsZWN0aW9uSW5mbxIrLmdycGMucmVmbGVjdGlvbi52MS5TZXJ2ZXJSZWZsZWN0aW9uUmVxdWVz" +
  "dBosLmdycGMucmVmbGVjdGlvbi52MS5TZXJ2ZXJSZWZsZWN0aW9uUmVzcG9uc2UoATABQmYKFWlvLmdycGMucmVmbGVjdGlv" +
  "bi52MUIVU2VydmVyUmVmbGVjdGlvblByb3RvUAFaNGdvb2dsZS5nb2xhbmcub3JnL2dycGMvcmVmbGVjdGlvbi9ncnBjX3Jl" +
  "ZmxlY3Rpb25fdjFiBnByb3RvMwqfDQooZ3JwYy9yZWZsZWN0aW9uL3YxYWxwaGEvcmVmbGVjdGlvbi5wcm90bxIXZ3JwYy5y" +
  "ZWZsZWN0aW9uLnYxYWxwaGEi+AIKF1NlcnZlclJlZmxlY3Rpb25SZXF1ZXN0EhIKBGhvc3QYASABKAlSBGhvc3QSKgoQZmls" +
  "ZV9ieV9maWxlbmFtZRgDIAEoCUgAUg5maWxlQnlGaWxlbmFtZRI2ChZmaWxlX2NvbnRhaW5pbmdfc3ltYm9sGAQgASgJSABS" +
  "FGZpbGVDb250YWluaW5nU3ltYm9sEmcKGWZpbGVfY29udGFpbmluZ19leHRlbnNpb24YBSABKAsyKS5ncnBjLnJlZmxlY3Rp" +
  "b24udjFhbHBoYS5FeHRlbnNpb25SZXF1ZXN0SABSF2ZpbGVDb250YWluaW5nRXh0ZW5zaW9uEkIKHWFsbF9leHRlbnNpb25f" +
  "bnVtYmVyc19vZl90eXBlGAYgASgJSABSGWFsbEV4dGVuc2lvbk51bWJlcnNPZlR5cGUSJQoNbGlzdF9zZXJ2aWNlcxgHIAEo" +
  "CUgAUgxsaXN0U2VydmljZXNCEQoPbWVzc2FnZV9yZXF1ZXN0ImYKEEV4dGVuc2lvblJlcXVlc3QSJwoPY29udGFpbmluZ190" +
  "eXBlGAEgASgJUg5jb250YWluaW5nVHlwZRIpChBleHRlbnNpb25fbnVtYmVyGAIgASgFUg9leHRlbnNpb25OdW1iZXIixwQK" +
  "GFNlcnZlclJlZmxlY3Rpb25SZXNwb25zZRIdCgp2YWxpZF9ob3N0GAEgASgJUgl2YWxpZEhvc3QSWwoQb3JpZ2luYWxfcmVx" +
  "dWVzdBgCIAEoCzIwLmdycGMucmVmbGVjdGlvbi52MWFscGhhLlNlcnZlclJlZmxlY3Rpb25SZXF1ZXN0Ug9vcmlnaW5hbFJl" +
  "cXVlc3QSawoYZmlsZV9kZXNjcmlwdG9yX3Jlc3BvbnNlGAQgASgLMi8uZ3JwYy5yZWZsZWN0aW9uLnYxYWxwaGEuRmlsZURl" +
  "c2NyaXB0b3JSZXNwb25zZUgAUhZmaWxlRGVzY3JpcHRvclJlc3BvbnNlEncKHmFsbF9leHRlbnNpb25fbnVtYmVyc19yZXNw" +
  "b25zZRgFIAEoCzIwLmdycGMucmVmbGVjdGlvbi52MWFscGhhLkV4dGVuc2lvbk51bWJlclJlc3BvbnNlSABSG2FsbEV4dGVu" +
  "c2lvbk51bWJlcnNSZXNwb25zZRJkChZsaXN0X3NlcnZpY2VzX3Jlc3BvbnNlGAYgASgLMiwuZ3JwYy5yZWZsZWN0aW9uLnYx" +
  "YWxwaGEuTGlzdFNlcnZpY2VSZXNwb25zZUgAUhRsaXN0U2VydmljZXNSZXNwb25zZRJPCg5lcnJvcl9yZXNwb25zZRgHIAEo" +
  "CzImLmdycGMucmVmbGVjdGlvbi52MWFscGhhLkVycm9yUmVzcG9uc2VIAFINZXJyb3JSZXNwb25zZUISChBtZXNzYWdlX3Jl" +
  "c3BvbnNlIkwKFkZpbGVEZXNjcmlwdG9yUmVzcG9uc2USMgoVZmlsZV9kZXNjcmlwdG9yX3Byb3RvGAEgAygMUhNmaWxlRGVz" +
  "Y3JpcHRvclByb3RvImoKF0V4dGVuc2lvbk51bWJlclJlc3BvbnNlEiQKDmJhc2VfdHlwZV9uYW1lGAEgASgJUgxiYXNlVHlw" +
  "ZU5hbWUSKQoQZXh0ZW5zaW9uX251bWJlchgCIAMoBVIPZXh0ZW5zaW9uTnVtYmVyIlkKE0xpc3RTZXJ2aWNlUmVzcG9uc2US" +
  "QgoHc2VydmljZRgBIAMoCzIoLmdycGMucmVmbGVjdGlvbi52MWFscGhhLlNlcnZpY2VSZXNwb25zZVIHc2VydmljZSIlCg9T" +
  "ZXJ2aWNlUmVzcG9uc2USEgoEbmFtZRgBIAEoCVIEbmFtZSJTCg1FcnJvclJlc3BvbnNlEh0KCmVycm9yX2NvZGUYASABKAVS" +
  "CWVycm9yQ29kZRIjCg1lcnJvcl9tZXNzYWdlGAIgASgJUgxlcnJvck1lc3NhZ2UykwEKEFNlcnZlclJlZmxlY3Rpb24SfwoU" +
  "U2VydmVyUmVmbGVjdGlvbkluZm8SMC5ncnBjLnJlZmxlY3Rpb24udjFhbHBoYS5TZXJ2ZXJSZWZsZWN0aW9uUmVxdWVzdBox" +
  "LmdycGMucmVmbGVjdGlvbi52MWFscGhhLlNlcnZlclJlZmxlY3Rpb25SZXNwb25zZSgBMAFiBnByb3RvMw==";

/** The ReflectionService's constructor argument (proto-loader's PackageDefinition). */
type PackageDefinition = ConstructorParameters<typeof ReflectionService>[0];

export interface ReflectionOptions {
  /**
   * Services to list (fully-qualified names). Default: every service in the descriptors,
   * so pass this when the server does not implement all of them.
   */
  services?: string[];
  /**
   * Services in the descriptors to leave out of the list (with `services` unset): those a file
   * defines for another process, e.g. nodeplane.v1.AgentService, which agents serve.
   */
  exclude?: readonly string[];
}

/** Splits a FileDescriptorSet (field 1: repeated FileDescriptorProto) into each file's bytes. */
export function splitDescriptorSet(set: Uint8Array): Uint8Array[] {
  const files: Uint8Array[] = [];
  const reader = new BinaryReader(set);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === 1 && wireType === WireType.LengthDelimited) files.push(reader.bytes());
    else reader.skip(wireType, fieldNo);
  }
  return files;
}

/** FileDescriptorProto.name (field 1), read without decoding the rest. */
export function fileDescriptorName(file: Uint8Array): string {
  const reader = new BinaryReader(file);
  let name = "";
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    // Keep scanning: in protobuf the last occurrence of a singular field wins.
    if (fieldNo === 1 && wireType === WireType.LengthDelimited) name = reader.string();
    else reader.skip(wireType, fieldNo);
  }
  if (name === "") throw new Error("FileDescriptorProto without a name");
  return name;
}

/**
 * Collects the files of several descriptor sets by name. A file found in more than one set
 * (google/protobuf/timestamp.proto, typically) must be byte-identical everywhere: strict
 * clients reject a file offered twice with different contents, so that is a build error.
 */
export function collectFileDescriptors(sets: Iterable<{ source: string; bytes: Uint8Array }>): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const sources = new Map<string, string>();
  for (const { source, bytes } of sets) {
    for (const file of splitDescriptorSet(bytes)) {
      const name = fileDescriptorName(file);
      const seen = files.get(name);
      if (seen === undefined) {
        files.set(name, file);
        sources.set(name, source);
      } else if (!Buffer.from(seen).equals(file)) {
        throw new Error(
          `descriptor file ${name} differs between ${sources.get(name) ?? "?"} and ${source}: ` +
            "build every descriptor set from the same sources",
        );
      }
    }
  }
  return files;
}

/** The fully-qualified names of the services a FileDescriptorProto defines (package: field 2; service: field 6, its name: field 1). */
function serviceNames(file: Uint8Array): string[] {
  const reader = new BinaryReader(file);
  let pkg = "";
  const names: string[] = [];
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === 2 && wireType === WireType.LengthDelimited) pkg = reader.string();
    else if (fieldNo === 6 && wireType === WireType.LengthDelimited) {
      const service = new BinaryReader(reader.bytes());
      while (service.pos < service.len) {
        const [f, w] = service.tag();
        if (f === 1 && w === WireType.LengthDelimited) names.push(service.string());
        else service.skip(w, f);
      }
    } else reader.skip(wireType, fieldNo);
  }
  return names.map((n) => (pkg ? `${pkg}.${n}` : n));
}

/** Reads descriptor sets from disk (plus the reflection service's own) into one file index. */
export function loadFileDescriptors(descriptorSetPaths: readonly string[]): Map<string, Uint8Array> {
  return collectFileDescriptors([
    ...descriptorSetPaths.map((path) => ({ source: path, bytes: readFileSync(path) })),
    { source: "embedded grpc.reflection descriptors", bytes: Buffer.from(REFLECTION_DESCRIPTOR_SET_BASE64, "base64") },
  ]);
}

/**
 * Finds the generated descriptor sets. tsc does not copy .binpb files, so beside the module
 * (src/server → src/gen when run from source, dist/src/server → dist/src/gen if the build
 * copied them) comes first, then the repository's src/gen as seen from dist/src/server.
 * All files must come from one directory so that they belong to one `npm run gen`.
 */
export function locateDescriptorSets(
  names: readonly string[] = DESCRIPTOR_SET_FILES,
  moduleUrl: string = import.meta.url,
): string[] {
  const candidates = ["../gen/", "../../../src/gen/"].map((rel) => fileURLToPath(new URL(rel, moduleUrl)));
  for (const dir of candidates) {
    const paths = names.map((name) => dir + name);
    if (paths.every((path) => existsSync(path))) return paths;
  }
  throw new Error(`descriptor sets ${names.join(", ")} not found in ${candidates.join(" or ")}: run \`npm run gen\``);
}

/**
 * @grpc/reflection decodes every file with protobufjs and serves a re-encoding. For our files
 * that is byte-identical today, but protobufjs drops what it does not know (custom options
 * such as buf.validate's, newer descriptor fields), so put buf's own bytes back into its
 * encoding cache. That cache is private: if a later version reshapes it, this returns false
 * and the library's re-encoding is served (the reflection test compares served bytes).
 */
function serveOriginalBytes(service: ReflectionService, files: ReadonlyMap<string, Uint8Array>): boolean {
  for (const version of ["v1", "v1Alpha"]) {
    const impl: unknown = Reflect.get(service, version);
    if (typeof impl !== "object" || impl === null) return false;
    const decoded: unknown = Reflect.get(impl, "files");
    const encodings: unknown = Reflect.get(impl, "fileEncodings");
    if (typeof decoded !== "object" || decoded === null || !(encodings instanceof Map)) return false;
    for (const [name, bytes] of files) {
      const file: unknown = Reflect.get(decoded, name);
      if (file === undefined || !encodings.has(file)) return false;
      encodings.set(file, Buffer.from(bytes));
    }
  }
  return true;
}

/**
 * Adds grpc.reflection.v1 and v1alpha ServerReflection to `server`, describing every file of
 * the given descriptor sets (default: src/gen/nodeplane.binpb and health.binpb) and the
 * reflection protocol itself.
 */
export function addReflection(
  server: Pick<grpc.Server, "addService">,
  descriptorSetPaths: readonly string[] = locateDescriptorSets(),
  options: ReflectionOptions = {},
): void {
  const files = loadFileDescriptors(descriptorSetPaths);
  // The implementation only reads `fileDescriptorProtos` of each entry; one entry carries all.
  const definition: PackageDefinition = {
    "nodeplane.descriptors": {
      format: "Protocol Buffer 3 DescriptorProto",
      type: {},
      fileDescriptorProtos: [...files.values()].map((file) => Buffer.from(file)),
    },
  };
  const services = options.services ?? (options.exclude ? [...files.values()].flatMap(serviceNames).filter((n) => !options.exclude!.includes(n)) : undefined);
  const service = new ReflectionService(definition, services === undefined ? undefined : { services });
  serveOriginalBytes(service, files);
  service.addToServer(server);
}
