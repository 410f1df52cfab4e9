/**
 * Label keys and values, label maps and annotation maps, by Kubernetes' rules
 * (IsQualifiedName, IsValidLabelValue, ValidateLabels, ValidateAnnotations).
 */
import { type FieldViolation, quote } from "../errors.js";
import { dns1123SubdomainViolations } from "./names.js";

const MAX_NAME_LENGTH = 63;
const MAX_PREFIX_LENGTH = 253;
const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** The longest valid label key (prefix 253, '/', name 63) is shown whole in field paths; longer keys are cut. */
const MAX_KEY_SHOWN = MAX_PREFIX_LENGTH + 1 + MAX_NAME_LENGTH;

/** Kubernetes' qualified name regex: one test answers for the common, valid name. */
const NAME = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** The same, for a whole label key: an optional DNS-1123 subdomain and '/', then a name (tried on at most 317 characters). */
const KEY = /^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

const isAlphanumeric = (c: string | undefined): boolean => c !== undefined && /^[A-Za-z0-9]$/.test(c);

/** Rules for a label value and for the name part of a key: ≤63 of [A-Za-z0-9_.-], alphanumeric ends. */
function nameViolations(value: string): string[] {
  if (value.length <= MAX_NAME_LENGTH && NAME.test(value)) return [];
  const rules: string[] = [];
  if (value.length > MAX_NAME_LENGTH) rules.push(`must be no more than ${MAX_NAME_LENGTH} characters`);
  if (!/^[A-Za-z0-9_.-]*$/.test(value)) {
    rules.push("must consist of alphanumeric characters, '-', '_' or '.'");
  }
  if (!isAlphanumeric(value[0])) rules.push("must start with an alphanumeric character");
  if (!isAlphanumeric(value[value.length - 1])) rules.push("must end with an alphanumeric character");
  return rules;
}

/**
 * The rules `key` breaks as a label key (a Kubernetes qualified name): an optional prefix that
 * is a DNS-1123 subdomain followed by `/`, then a name. Empty when valid. Rules about the
 * prefix start with "prefix part", rules about the name (when there is a prefix) with "name part".
 */
export function labelKeyViolations(key: string): string[] {
  const slash = key.indexOf("/");
  if (slash <= MAX_PREFIX_LENGTH && key.length - slash - 1 <= MAX_NAME_LENGTH && KEY.test(key)) return [];
  if (key.length === 0) return ["must not be empty"];
  if (slash < 0) return nameViolations(key);
  if (key.includes("/", slash + 1)) {
    return ["must contain at most one '/' (an optional DNS subdomain prefix and '/', then a name, e.g. \"example.com/my-name\")"];
  }
  const prefix = key.slice(0, slash);
  const name = key.slice(slash + 1);
  const rules: string[] = [];
  if (prefix.length === 0) rules.push("prefix part must not be empty (omit the '/' for a key without a prefix)");
  else rules.push(...dns1123SubdomainViolations(prefix).map((r) => `prefix part ${r}`));
  if (name.length === 0) rules.push("name part must not be empty");
  else rules.push(...nameViolations(name).map((r) => `name part ${r}`));
  return rules;
}

/** The rules `value` breaks as a label value (may be empty). Empty when valid. */
export function labelValueViolations(value: string): string[] {
  return value.length === 0 ? [] : nameViolations(value);
}

/** The path of one map entry, e.g. `metadata.labels["kubernetes.io/os"]`. */
function entryField(field: string, key: string): string {
  return `${field}[${quote(key, MAX_KEY_SHOWN)}]`;
}

/** Every violation in a label map at `field` (e.g. "metadata.labels"). */
export function labelsViolations(labels: Record<string, string>, field: string): FieldViolation[] {
  const out: FieldViolation[] = [];
  for (const [key, value] of Object.entries(labels)) {
    const keyRules = labelKeyViolations(key);
    const valueRules = labelValueViolations(value);
    if (keyRules.length === 0 && valueRules.length === 0) continue;
    const at = entryField(field, key);
    for (const rule of keyRules) out.push({ field: at, value: key, rule: `key ${rule}` });
    for (const rule of valueRules) out.push({ field: at, value, rule });
  }
  return out;
}

/**
 * Every violation in an annotation map at `field` (e.g. "metadata.annotations"): keys as label
 * keys, values free, and the keys and values together at most 256 KiB (UTF-8 bytes).
 */
export function annotationsViolations(annotations: Record<string, string>, field: string): FieldViolation[] {
  const out: FieldViolation[] = [];
  let size = 0;
  for (const [key, value] of Object.entries(annotations)) {
    size += Buffer.byteLength(key, "utf8") + Buffer.byteLength(value, "utf8");
    for (const rule of labelKeyViolations(key)) {
      out.push({ field: entryField(field, key), value: key, rule: `key ${rule}` });
    }
  }
  if (size > MAX_ANNOTATIONS_BYTES) {
    out.push({
      field,
      value: `${size} bytes`,
      rule: `total size of keys and values must be no more than ${MAX_ANNOTATIONS_BYTES} bytes (256 KiB)`,
    });
  }
  return out;
}
