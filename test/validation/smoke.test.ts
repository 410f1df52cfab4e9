import { describe, expect, it } from "vitest";
import { quote } from "../../src/errors.js";

describe("quote", () => {
  it("cuts long values short", () => {
    expect(quote("x".repeat(100), 10)).toBe(JSON.stringify(`${"x".repeat(10)}…(100 chars)`));
  });
});
