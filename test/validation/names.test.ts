import { describe, expect, it } from "vitest";
import { dns1123SubdomainViolations } from "../../src/validation/names.js";
import { sampleStrings } from "./helpers.js";

const LENGTH = "must be no more than 253 characters";
const CHARS = "must consist of lower case alphanumeric characters, '-' or '.'";
const START = "must start with an alphanumeric character";
const END = "must end with an alphanumeric character";
const PARTS = "each '.'-separated part must be non-empty and start and end with an alphanumeric character";

/** A valid name of exactly n characters. */
const nameOf = (n: number): string => "a".repeat(n);

describe("dns1123SubdomainViolations", () => {
  const rows: { name: string; input: string; rules: string[] }[] = [
    { name: "simple name is valid", input: "node-1", rules: [] },
    { name: "single character is valid", input: "a", rules: [] },
    { name: "digits only are valid", input: "123", rules: [] },
    { name: "dotted name is valid", input: "node-1.rack-2.example.com", rules: [] },
    { name: "253 characters is valid (boundary)", input: nameOf(253), rules: [] },
    { name: "254 characters is too long (boundary)", input: nameOf(254), rules: [LENGTH] },
    { name: "empty name", input: "", rules: ["must not be empty"] },
    { name: "upper case letters", input: "Node1", rules: [CHARS] },
    { name: "underscore", input: "node_1", rules: [CHARS] },
    { name: "space", input: "node 1", rules: [CHARS] },
    { name: "non-ASCII letter", input: "nöde", rules: [CHARS] },
    { name: "starts with '-'", input: "-node", rules: [START] },
    { name: "starts with '.'", input: ".node", rules: [START] },
    { name: "ends with '-'", input: "node-", rules: [END] },
    { name: "ends with '.'", input: "node.", rules: [END] },
    { name: "starts and ends with '-'", input: "-", rules: [START, END] },
    { name: "empty part between dots", input: "a..b", rules: [PARTS] },
    { name: "part ending with '-'", input: "a-.b", rules: [PARTS] },
    { name: "part starting with '-'", input: "a.-b", rules: [PARTS] },
    {
      name: "every rule at once",
      input: `-${"A".repeat(253)}.-`,
      rules: [LENGTH, CHARS, START, END, PARTS],
    },
  ];
  it.each(rows)("$name", ({ input, rules }) => {
    expect(dns1123SubdomainViolations(input)).toEqual(rules);
  });
});

describe("dns1123SubdomainViolations agrees with Kubernetes' regex", () => {
  const K8S = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
  it("is empty exactly when the regex matches and the name has at most 253 characters", () => {
    const inputs = [...sampleStrings("a0-.A_", 5000, 8), nameOf(253), nameOf(254), `${nameOf(252)}.`];
    for (const input of inputs) {
      expect(dns1123SubdomainViolations(input).length === 0, JSON.stringify(input)).toBe(K8S.test(input) && input.length <= 253);
    }
  });
});
