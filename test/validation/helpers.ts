import { expect } from "vitest";
import { type FieldViolation, InvalidError } from "../../src/errors.js";

/** The InvalidError `fn` throws (failing the test when it throws nothing or something else). */
export function invalidErrorOf(fn: () => unknown): InvalidError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidError);
    return e as InvalidError;
  }
  return expect.unreachable("expected an InvalidError, nothing was thrown");
}

/** The violations of the InvalidError `fn` throws. */
export function violationsOf(fn: () => unknown): FieldViolation[] {
  return invalidErrorOf(fn).violations;
}

/**
 * `count` strings of 0 to `maxLength` characters drawn from `alphabet`, the same on every run
 * (a fixed linear congruential generator): inputs for checking a validator against a regex.
 */
export function sampleStrings(alphabet: string, count: number, maxLength: number): string[] {
  let seed = 42;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  return Array.from({ length: count }, () => Array.from({ length: next(maxLength + 1) }, () => alphabet[next(alphabet.length)]).join(""));
}
