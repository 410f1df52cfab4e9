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
