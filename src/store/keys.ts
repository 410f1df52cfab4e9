/**
 * Backend-neutral rules for keys and transactions, shared by every Store implementation so
 * that they accept and refuse the same requests (the conformance suite checks both).
 *
 * Key order is byte order of the UTF-8 encoding, which equals Unicode code point order (etcd
 * compares raw bytes; SQLite's BINARY collation compares UTF-8 bytes). JavaScript's `<`
 * compares UTF-16 code units instead, which disagrees for astral characters versus
 * U+E000..U+FFFF, so comparisons between keys go through `compareKeys`.
 */
import { InvalidError } from "../errors.js";
import type { TxnRequest } from "./store.js";

/** Negative, zero or positive as `a` sorts before, equal to or after `b` in byte order. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * The smallest string greater than every string that starts with `prefix` (etcd's "range
 * end"), or undefined when there is none (empty prefix, or only U+10FFFF characters): then
 * the range is unbounded above. Keys k with prefix <= k < prefixEnd(prefix) are exactly the
 * keys under the prefix.
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      // Skip the surrogate range: it holds no characters a valid UTF-8 key can contain.
      const next = last === 0xd7ff ? 0xe000 : last + 1;
      return cps.join("") + String.fromCodePoint(next);
    }
  }
  return undefined;
}

/**
 * Refuse a transaction no backend can apply. etcd refuses a txn that changes one key twice
 * ("duplicate key given in txn request"), so every backend does: a change per key per
 * revision is also what lets the history hold one row per (revision, key).
 */
export function validateTxn(req: TxnRequest): InvalidError | undefined {
  for (const [i, c] of req.compare.entries()) {
    if (c.key === "") return InvalidError.of(`compare[${i}].key`, "", "must not be empty");
    if (!Number.isSafeInteger(c.modRevision) || c.modRevision < 0) {
      return InvalidError.of(`compare[${i}].modRevision`, String(c.modRevision), "must be an integer >= 0");
    }
  }
  const seen = new Set<string>();
  for (const [i, op] of req.ops.entries()) {
    if (op.key === "") return InvalidError.of(`ops[${i}].key`, "", "must not be empty");
    if (seen.has(op.key)) {
      return InvalidError.of(`ops[${i}].key`, op.key, "is changed twice in one transaction; change each key at most once");
    }
    seen.add(op.key);
    if (op.type === "put" && !(op.value instanceof Uint8Array)) {
      return InvalidError.of(`ops[${i}].value`, typeof op.value, "must be a Uint8Array");
    }
  }
  return undefined;
}

/** Check a revision given by a caller: a safe integer >= 0. */
export function validateRevision(field: string, revision: number): InvalidError | undefined {
  if (Number.isSafeInteger(revision) && revision >= 0) return undefined;
  return InvalidError.of(field, String(revision), "must be an integer >= 0");
}

/** The error for a read or watch at a revision the store has not reached yet. */
export function futureRevision(field: string, revision: number, current: number): InvalidError {
  return InvalidError.of(field, String(revision), `is in the future: the store's current revision is ${current}`);
}
