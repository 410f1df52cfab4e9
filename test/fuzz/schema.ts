/**
 * Request schemas as the fuzz mutator needs them: for each field its number, its wire kind,
 * whether it repeats, and the message it holds. Read from the descriptor sets `npm run gen`
 * writes (src/gen/nodeplane.binpb, src/gen/health.binpb: the same files the server serves to
 * reflection), so the mutator follows the proto as it is, not a copy of it.
 *
 * Map fields are what they are on the wire: repeated entry messages with key = 1, value = 2.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary, ScalarType, type DescField, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

/** How a field is written on the wire (and so which hostile values fit it). */
export type FieldKind = "string" | "bytes" | "varint" | "bool" | "enum" | "fixed32" | "fixed64" | "message";

export interface FieldShape {
  no: number;
  name: string;
  kind: FieldKind;
  repeated: boolean;
  /** For kind "message" (lazy: schemas may refer to themselves). */
  message?: () => Shape;
}

export interface Shape {
  name: string;
  fields: Map<number, FieldShape>;
}

function scalarKind(t: ScalarType): FieldKind {
  switch (t) {
    case ScalarType.STRING:
      return "string";
    case ScalarType.BYTES:
      return "bytes";
    case ScalarType.BOOL:
      return "bool";
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return "fixed32";
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.DOUBLE:
      return "fixed64";
    default:
      return "varint";
  }
}

function entryShape(owner: string, field: DescField & { fieldKind: "map" }): Shape {
  const value: FieldShape =
    field.mapKind === "message"
      ? { no: 2, name: "value", kind: "message", repeated: false, message: () => shapeOf(field.message) }
      : { no: 2, name: "value", kind: field.mapKind === "enum" ? "enum" : scalarKind(field.scalar), repeated: false };
  return {
    name: `${owner}.${field.name}Entry`,
    fields: new Map([
      [1, { no: 1, name: "key", kind: scalarKind(field.mapKey), repeated: false }],
      [2, value],
    ]),
  };
}

function fieldShape(owner: string, field: DescField): FieldShape {
  const base = { no: field.number, name: field.name };
  switch (field.fieldKind) {
    case "scalar":
      return { ...base, kind: scalarKind(field.scalar), repeated: false };
    case "enum":
      return { ...base, kind: "enum", repeated: false };
    case "message":
      return { ...base, kind: "message", repeated: false, message: () => shapeOf(field.message) };
    case "list":
      if (field.listKind === "message") return { ...base, kind: "message", repeated: true, message: () => shapeOf(field.message) };
      return { ...base, kind: field.listKind === "enum" ? "enum" : scalarKind(field.scalar), repeated: true };
    case "map": {
      const entry = entryShape(owner, field);
      return { ...base, kind: "message", repeated: true, message: () => entry };
    }
  }
}

const shapes = new Map<string, Shape>();

function shapeOf(desc: DescMessage): Shape {
  let shape = shapes.get(desc.typeName);
  if (shape === undefined) {
    shape = { name: desc.typeName, fields: new Map() };
    shapes.set(desc.typeName, shape);
    for (const f of desc.fields) shape.fields.set(f.number, fieldShape(desc.typeName, f));
  }
  return shape;
}

function loadSet(file: string): FileRegistry {
  const path = fileURLToPath(new URL(`../../src/gen/${file}`, import.meta.url));
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(path)));
}

const registries = [loadSet("nodeplane.binpb"), loadSet("health.binpb")];

/**
 * grpc.reflection's request (v1 and v1alpha alike). Not in the generated descriptor sets (the
 * server embeds its own copy), and frozen since 2016, so written out here.
 */
const REFLECTION_REQUEST: Shape = (() => {
  const s = (no: number, name: string): FieldShape => ({ no, name, kind: "string", repeated: false });
  const extension: Shape = {
    name: "grpc.reflection.v1.ExtensionRequest",
    fields: new Map([
      [1, s(1, "containing_type")],
      [2, { no: 2, name: "extension_number", kind: "varint", repeated: false }],
    ]),
  };
  return {
    name: "grpc.reflection.v1.ServerReflectionRequest",
    fields: new Map<number, FieldShape>([
      [1, s(1, "host")],
      [3, s(3, "file_by_filename")],
      [4, s(4, "file_containing_symbol")],
      [5, { no: 5, name: "file_containing_extension", kind: "message", repeated: false, message: () => extension }],
      [6, s(6, "all_extension_numbers_of_type")],
      [7, s(7, "list_services")],
    ]),
  };
})();

/** The shape of a request message by its full name, e.g. "nodeplane.v1.RegisterRequest". */
export function requestShape(typeName: string): Shape {
  if (typeName === REFLECTION_REQUEST.name) return REFLECTION_REQUEST;
  for (const registry of registries) {
    const desc = registry.getMessage(typeName);
    if (desc) return shapeOf(desc);
  }
  throw new Error(`no descriptor for ${typeName} in src/gen/*.binpb (run npm run gen)`);
}
