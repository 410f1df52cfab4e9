import { describe, expect, it } from "vitest";
import { parseQuantity, quantityViolations, resourceListViolations } from "../../src/validation/quantity.js";
import { invalidErrorOf } from "./helpers.js";

const NEGATIVE = "must not be negative";
const NOT_A_NUMBER = 'must start with a number, optionally signed (e.g. "4", "500m", "1.5", "16Gi", "1e3")';
const unknownSuffix = (s: string): string =>
  `has unknown suffix ${JSON.stringify(s)}: expected one of Ki, Mi, Gi, Ti, Pi, Ei (binary), n, u, m, k, M, G, T, P, E (decimal), an exponent such as e3, or none`;

describe("parseQuantity: each valid form and its value", () => {
  const rows: { name: string; input: string; value: number }[] = [
    { name: "integer", input: "4", value: 4 },
    { name: "integer pod count", input: "110", value: 110 },
    { name: "zero", input: "0", value: 0 },
    { name: "leading zeros", input: "007", value: 7 },
    { name: "explicit plus sign", input: "+4", value: 4 },
    { name: "decimal fraction", input: "1.5", value: 1.5 },
    { name: "fraction without integer part", input: ".5", value: 0.5 },
    { name: "integer with trailing dot", input: "1.", value: 1 },
    { name: "nano", input: "5n", value: 5e-9 },
    { name: "micro", input: "5u", value: 5e-6 },
    { name: "milli", input: "500m", value: 0.5 },
    { name: "kilo", input: "2k", value: 2000 },
    { name: "mega", input: "3M", value: 3e6 },
    { name: "giga", input: "4G", value: 4e9 },
    { name: "tera", input: "1T", value: 1e12 },
    { name: "peta", input: "1P", value: 1e15 },
    { name: "exa", input: "1E", value: 1e18 },
    { name: "kibi", input: "1Ki", value: 1024 },
    { name: "mebi", input: "1Mi", value: 1024 ** 2 },
    { name: "gibi", input: "16Gi", value: 17179869184 },
    { name: "tebi", input: "1Ti", value: 1024 ** 4 },
    { name: "pebi", input: "1Pi", value: 1024 ** 5 },
    { name: "exbi", input: "1Ei", value: 1024 ** 6 },
    { name: "fractional binary", input: "1.5Gi", value: 1.5 * 1024 ** 3 },
    { name: "fractional decimal SI", input: "0.5k", value: 500 },
    { name: "lower-case exponent", input: "1e3", value: 1000 },
    { name: "upper-case exponent", input: "1E3", value: 1000 },
    { name: "negative exponent", input: "25e-2", value: 0.25 },
    { name: "signed positive exponent", input: "2e+2", value: 200 },
    { name: "negative quantity parses (validation rejects it)", input: "-1", value: -1 },
  ];
  it.each(rows)("$name: $input", ({ input, value }) => {
    expect(parseQuantity(input)).toBe(value);
    expect(quantityViolations(input)).toEqual(value < 0 ? [NEGATIVE] : []);
  });
});

describe("quantityViolations: invalid forms", () => {
  const rows: { name: string; input: string; rule: string }[] = [
    { name: "negative integer", input: "-1", rule: NEGATIVE },
    { name: "negative with suffix", input: "-500m", rule: NEGATIVE },
    { name: "negative binary", input: "-1Gi", rule: NEGATIVE },
    { name: "empty", input: "", rule: 'must not be empty: expected a quantity, e.g. "4", "500m", "1.5", "16Gi", "1e3"' },
    { name: "suffix only", input: "Gi", rule: NOT_A_NUMBER },
    { name: "sign only", input: "-", rule: NOT_A_NUMBER },
    { name: "dot only", input: ".", rule: NOT_A_NUMBER },
    { name: "leading space", input: " 4", rule: NOT_A_NUMBER },
    { name: "trailing space", input: "4 ", rule: unknownSuffix(" ") },
    { name: "upper-case K is not a suffix", input: "1K", rule: unknownSuffix("K") },
    { name: "a name on Object.prototype is not a suffix", input: "1toString", rule: unknownSuffix("toString") },
    { name: "__proto__ is not a suffix", input: "1__proto__", rule: unknownSuffix("__proto__") },
    { name: "lower-case ki is not a suffix", input: "1ki", rule: unknownSuffix("ki") },
    { name: "unit name", input: "1GB", rule: unknownSuffix("GB") },
    { name: "two decimal points", input: "1.2.3", rule: unknownSuffix(".3") },
    { name: "exponent without digits", input: "1e", rule: unknownSuffix("e") },
    { name: "fractional exponent", input: "1e1.5", rule: unknownSuffix("e1.5") },
    { name: "exponent and suffix", input: "1e3Ki", rule: unknownSuffix("e3Ki") },
    { name: "too large", input: "1e400", rule: "is too large" },
  ];
  it.each(rows)("$name: $input", ({ input, rule }) => {
    expect(quantityViolations(input)).toEqual([rule]);
  });

  it("negative zero is not negative", () => {
    expect(quantityViolations("-0")).toEqual([]);
  });

  it("parseQuantity throws InvalidError naming the field, the value and the rule", () => {
    const e = invalidErrorOf(() => parseQuantity("1K", "status.capacity[\"memory\"]"));
    expect(e.violations).toEqual([{ field: 'status.capacity["memory"]', value: "1K", rule: unknownSuffix("K") }]);
    expect(e.message).toBe(`status.capacity["memory"]: "1K": ${unknownSuffix("K")}`);
  });
});

describe("resourceListViolations", () => {
  it("accepts standard and extended resource names", () => {
    const ok = { cpu: "4", memory: "16Gi", pods: "110", "ephemeral-storage": "100G", "hugepages-2Mi": "0", "example.com/gpu": "2" };
    expect(resourceListViolations(ok, "status.capacity")).toEqual([]);
  });

  it("names the resource, the quantity and the rule", () => {
    expect(resourceListViolations({ cpu: "-1", memory: "lots" }, "status.allocatable")).toEqual([
      { field: 'status.allocatable["cpu"]', value: "-1", rule: NEGATIVE },
      { field: 'status.allocatable["memory"]', value: "lots", rule: NOT_A_NUMBER },
    ]);
  });

  it("validates resource names as qualified names", () => {
    expect(resourceListViolations({ "bad name": "1", "a/b/c": "1" }, "status.capacity")).toEqual([
      {
        field: 'status.capacity["bad name"]',
        value: "bad name",
        rule: "resource name must consist of alphanumeric characters, '-', '_' or '.'",
      },
      {
        field: 'status.capacity["a/b/c"]',
        value: "a/b/c",
        rule: "resource name must contain at most one '/' (an optional DNS subdomain prefix and '/', then a name, e.g. \"example.com/my-name\")",
      },
    ]);
  });
});
