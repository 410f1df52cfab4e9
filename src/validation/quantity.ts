/**
 * Kubernetes resource quantities (resource.Quantity):
 *
 *   <quantity>     ::= <signedNumber><suffix>
 *   <signedNumber> ::= ["+" | "-"] (<digits> | <digits>.<digits> | <digits>. | .<digits>)
 *   <suffix>       ::= <binarySI> | <decimalSI> | <decimalExponent>
 *   <binarySI>     ::= Ki | Mi | Gi | Ti | Pi | Ei
 *   <decimalSI>    ::= n | u | m | "" | k | M | G | T | P | E
 *   <decimalExponent> ::= ("e" | "E") ["+" | "-"] <digits>
 *
 * and the resource lists (capacity, allocatable) that map resource names to them.
 */
import { type FieldViolation, InvalidError, quote } from "../errors.js";
import { labelKeyViolations } from "./labels.js";

// Maps, not object literals: a suffix such as "toString" must not find Object.prototype's.
const BINARY_SI: ReadonlyMap<string, number> = new Map([["Ki", 1], ["Mi", 2], ["Gi", 3], ["Ti", 4], ["Pi", 5], ["Ei", 6]]);
const DECIMAL_SI: ReadonlyMap<string, number> = new Map([
  ["n", -9],
  ["u", -6],
  ["m", -3],
  ["", 0],
  ["k", 3],
  ["M", 6],
  ["G", 9],
  ["T", 12],
  ["P", 15],
  ["E", 18],
]);

const NUMBER = /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)$/s;
const EXPONENT = /^[eE]([+-]?[0-9]+)$/;

const EXAMPLES = 'e.g. "4", "500m", "1.5", "16Gi", "1e3"';

/** Syntax check and value of a quantity; a string is the rule it breaks. */
function interpret(value: string): number | string {
  if (value.length === 0) return `must not be empty: expected a quantity, ${EXAMPLES}`;
  const m = NUMBER.exec(value);
  if (!m) return `must start with a number, optionally signed (${EXAMPLES})`;
  const [, sign = "", digits = "", suffix = ""] = m;
  const mantissa = `${sign}${digits.endsWith(".") ? `${digits}0` : digits}`;
  let result: number;
  const binary = BINARY_SI.get(suffix);
  const decimal = binary === undefined ? DECIMAL_SI.get(suffix) : undefined;
  const exponent = binary === undefined && decimal === undefined ? EXPONENT.exec(suffix)?.[1] : undefined;
  if (binary !== undefined) result = Number(mantissa) * 1024 ** binary;
  else if (decimal !== undefined) result = decimal === 0 ? Number(mantissa) : Number(`${mantissa}e${decimal}`);
  else if (exponent !== undefined) result = Number(`${mantissa}e${exponent}`);
  else {
    return (
      `has unknown suffix ${quote(suffix, 16)}: expected one of Ki, Mi, Gi, Ti, Pi, Ei (binary), ` +
      `n, u, m, k, M, G, T, P, E (decimal), an exponent such as e3, or none`
    );
  }
  if (!Number.isFinite(result)) return "is too large";
  return result;
}

/** The rules `value` breaks as a non-negative quantity; empty when it is one. */
export function quantityViolations(value: string): string[] {
  const v = interpret(value);
  if (typeof v === "string") return [v];
  return v < 0 ? ["must not be negative"] : [];
}

/**
 * The value of a quantity as a number ("500m" → 0.5, "16Gi" → 17179869184, "1e3" → 1000).
 * Negative quantities parse (validation rejects them where they are not allowed).
 * @throws InvalidError naming `field` when `value` is not a quantity.
 */
export function parseQuantity(value: string, field = "quantity"): number {
  const v = interpret(value);
  if (typeof v === "string") throw InvalidError.of(field, value, v);
  return v;
}

/**
 * Every violation in a resource list at `field` (e.g. "status.capacity"): resource names are
 * qualified names like label keys ("cpu", "hugepages-2Mi", "example.com/gpu"), values are
 * non-negative quantities.
 */
export function resourceListViolations(resources: Record<string, string>, field: string): FieldViolation[] {
  const out: FieldViolation[] = [];
  for (const [name, quantity] of Object.entries(resources)) {
    const nameRules = labelKeyViolations(name);
    const quantityRules = quantityViolations(quantity);
    if (nameRules.length === 0 && quantityRules.length === 0) continue;
    const at = `${field}[${quote(name, 317)}]`; // 317: the longest valid qualified name, shown whole
    for (const rule of nameRules) out.push({ field: at, value: name, rule: `resource name ${rule}` });
    for (const rule of quantityRules) out.push({ field: at, value: quantity, rule });
  }
  return out;
}
