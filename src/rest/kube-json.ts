/**
 * Reading and writing Kubernetes JSON: RFC 3339 times, and a strict reader of client objects.
 *
 * Times: Kubernetes writes `metav1.Time` with second precision and `MicroTime` with six
 * fractional digits. nodeplane keeps milliseconds, so a time a client may write back
 * (conditions, taints) is written with its fraction when it has one (still RFC 3339, and Go's
 * parser reads it): a read-modify-write through kubectl (label, taint, cordon) then leaves
 * every other time exactly as stored. Server-set times (creation, events) are in seconds.
 *
 * The reader walks a decoded JSON document field by field. Wrong types are errors (400, as
 * Kubernetes' decoder answers); fields Kubernetes has but nodeplane does not keep are
 * dropped with a warning; fields nobody knows are "unknown fields", which the request's
 * `fieldValidation` turns into an error (Strict), a warning (Warn, the default) or nothing
 * (Ignore).
 */
import { badRequest } from "./status.js";

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Set an own property, whatever its name ("__proto__" included). */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A metav1.Time: seconds, or milliseconds when there are some. */
export function formatTime(t: Date | undefined): string | undefined {
  if (t === undefined || Number.isNaN(t.getTime())) return undefined;
  const iso = t.toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}

/** A metav1.Time exactly as Kubernetes writes it (seconds): for times clients never write back. */
export function formatSeconds(t: Date | undefined): string | undefined {
  if (t === undefined || Number.isNaN(t.getTime())) return undefined;
  return `${t.toISOString().slice(0, 19)}Z`;
}

/** A metav1.MicroTime: always six fractional digits. */
export function formatMicroTime(t: Date | undefined): string | undefined {
  if (t === undefined || Number.isNaN(t.getTime())) return undefined;
  return `${t.toISOString().slice(0, -1)}000Z`;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export type FieldValidation = "Strict" | "Warn" | "Ignore";

/** What one decode found besides the object: unknown fields and dropped ones. */
export class DecodeReport {
  readonly unknown: string[] = [];
  readonly dropped: string[] = [];

  constructor(readonly validation: FieldValidation) {}

  /** Throw for Strict unknown fields; answer the warnings to send otherwise. */
  finish(): string[] {
    if (this.validation === "Strict" && this.unknown.length > 0) {
      throw badRequest(`strict decoding error: ${this.unknown.map((f) => `unknown field ${JSON.stringify(f)}`).join(", ")}`);
    }
    const warnings = this.validation === "Warn" ? this.unknown.map((f) => `unknown field ${JSON.stringify(f)}`) : [];
    return [...warnings, ...this.dropped.map((f) => `${f} is not kept by nodeplane and was ignored`)];
  }
}

const typeOf = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/**
 * The fields of one JSON object at `path`. Each getter consumes its key; `done()` reports
 * every key no getter asked for as unknown (and `ignore`d keys as dropped when set).
 */
export class Fields {
  private readonly seen = new Set<string>();
  private readonly obj: JsonObject;

  constructor(
    value: unknown,
    readonly path: string,
    private readonly report: DecodeReport,
  ) {
    if (value !== undefined && value !== null && !isObject(value)) throw wrongType(path, "an object", value);
    this.obj = isObject(value) ? value : {};
  }

  private at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  /** The raw value (undefined when absent or null). */
  raw(key: string): Json | undefined {
    this.seen.add(key);
    const v = Object.hasOwn(this.obj, key) ? this.obj[key] : undefined;
    return v === null ? undefined : v;
  }

  string(key: string): string {
    const v = this.raw(key);
    if (v === undefined) return "";
    if (typeof v !== "string") throw wrongType(this.at(key), "a string", v);
    return v;
  }

  boolean(key: string): boolean {
    const v = this.raw(key);
    if (v === undefined) return false;
    if (typeof v !== "boolean") throw wrongType(this.at(key), "a boolean", v);
    return v;
  }

  integer(key: string): number {
    const v = this.raw(key);
    if (v === undefined) return 0;
    if (typeof v !== "number" || !Number.isSafeInteger(v)) throw wrongType(this.at(key), "an integer", v);
    return v;
  }

  time(key: string): Date | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !RFC3339.test(v) || Number.isNaN(Date.parse(v))) {
      throw wrongType(this.at(key), "an RFC 3339 time such as \"2024-05-01T12:00:00Z\"", v);
    }
    return new Date(v);
  }

  /** A map of strings; numbers and booleans are not strings (as in Kubernetes' labels). */
  stringMap(key: string, allowNumbers = false): Record<string, string> {
    const v = this.raw(key);
    const out: Record<string, string> = {};
    if (v === undefined) return out;
    if (!isObject(v)) throw wrongType(this.at(key), "an object of strings", v);
    for (const [k, item] of Object.entries(v)) {
      if (item === null) continue;
      if (typeof item === "string") setOwn(out, k, item);
      else if (allowNumbers && typeof item === "number" && Number.isFinite(item)) setOwn(out, k, String(item));
      else throw wrongType(`${this.at(key)}[${JSON.stringify(k)}]`, allowNumbers ? "a quantity string" : "a string", item);
    }
    return out;
  }

  strings(key: string): string[] {
    return this.list(key, (item, at) => {
      if (typeof item !== "string") throw wrongType(at, "a string", item);
      return item;
    });
  }

  object<T>(key: string, read: (f: Fields) => T): T {
    const f = new Fields(this.raw(key), this.at(key), this.report);
    const out = read(f);
    f.done();
    return out;
  }

  list<T>(key: string, read: (item: Json, at: string) => T): T[] {
    const v = this.raw(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw wrongType(this.at(key), "a list", v);
    return v.map((item, i) => read(item, `${this.at(key)}[${i}]`));
  }

  objects<T>(key: string, read: (f: Fields) => T): T[] {
    return this.list(key, (item, at) => {
      const f = new Fields(item, at, this.report);
      const out = read(f);
      f.done();
      return out;
    });
  }

  /** Kubernetes fields nodeplane does not keep: accepted, reported as dropped when set. */
  ignore(...keys: string[]): void {
    for (const key of keys) {
      const v = this.raw(key);
      const empty = v === undefined || v === "" || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);
      if (!empty) this.report.dropped.push(this.at(key));
    }
  }

  /** Kubernetes fields nodeplane sets itself: accepted and silently replaced. */
  serverSet(...keys: string[]): void {
    for (const key of keys) this.seen.add(key);
  }

  done(): void {
    for (const key of Object.keys(this.obj)) if (!this.seen.has(key)) this.report.unknown.push(this.at(key));
  }
}

function wrongType(path: string, want: string, got: unknown): Error {
  return badRequest(`${path || "the body"}: expected ${want}, found ${typeOf(got)}${typeof got === "string" ? ` ${JSON.stringify(got.slice(0, 64))}` : ""}`);
}

/** Drop undefined members and empty maps/lists, as Go's `omitempty` does. */
export function compact<T extends Record<string, unknown>>(obj: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === "" || v === false) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (isObject(v) && Object.keys(v).length === 0) continue;
    setOwn(out, k, v);
  }
  return out as Partial<T>;
}
