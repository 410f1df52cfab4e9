/**
 * Whether two decoded messages say the same thing, field by field, without encoding either:
 * plain objects (the same keys, in any order: map fields), arrays, Dates (by time), and
 * primitives (===, so bigints by value). Objects that share parts (a change built from the stored
 * object by spreading it) are compared only where they differ.
 *
 * Equal here implies equal encodings up to the order of map entries, which says the same thing.
 * The converse need not hold (NaN, a key present as undefined): such a pair counts as changed,
 * which costs a write and never loses one.
 */
export function sameMessage(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  const aArray = Array.isArray(a);
  if (aArray !== Array.isArray(b)) return false;
  if (aArray) {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameMessage(x[i], y[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  if (keys.length !== Object.keys(y).length) return false;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (!Object.prototype.hasOwnProperty.call(y, k) || !sameMessage(x[k], y[k])) return false;
  }
  return true;
}
