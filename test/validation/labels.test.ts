import { describe, expect, it } from "vitest";
import {
  annotationsViolations,
  labelKeyViolations,
  labelsViolations,
  labelValueViolations,
} from "../../src/validation/labels.js";
import { sampleStrings } from "./helpers.js";

const CHARS = "must consist of alphanumeric characters, '-', '_' or '.'";
const START = "must start with an alphanumeric character";
const END = "must end with an alphanumeric character";
const PREFIX_253 = "a".repeat(253);

describe("labelKeyViolations", () => {
  const rows: { name: string; key: string; rules: string[] }[] = [
    { name: "plain name", key: "zone", rules: [] },
    { name: "name with '-', '_', '.' and upper case", key: "My_label-1.x", rules: [] },
    { name: "prefixed name", key: "kubernetes.io/os", rules: [] },
    { name: "name of 63 characters (boundary)", key: "k".repeat(63), rules: [] },
    { name: "name of 64 characters (boundary)", key: "k".repeat(64), rules: ["must be no more than 63 characters"] },
    { name: "prefixed name of 63 characters (boundary)", key: `example.com/${"k".repeat(63)}`, rules: [] },
    {
      name: "prefixed name of 64 characters (boundary)",
      key: `example.com/${"k".repeat(64)}`,
      rules: ["name part must be no more than 63 characters"],
    },
    { name: "prefix of 253 characters (boundary)", key: `${PREFIX_253}/x`, rules: [] },
    {
      name: "prefix of 254 characters (boundary)",
      key: `${PREFIX_253}a/x`,
      rules: ["prefix part must be no more than 253 characters"],
    },
    { name: "empty key", key: "", rules: ["must not be empty"] },
    { name: "name with a bad character", key: "a:b", rules: [CHARS] },
    { name: "name starting with '-'", key: "-a", rules: [START] },
    { name: "name ending with '.'", key: "a.", rules: [END] },
    { name: "name starting with '_'", key: "_a", rules: [START] },
    { name: "upper-case prefix", key: "Example.com/a", rules: ["prefix part must consist of lower case alphanumeric characters, '-' or '.'"] },
    { name: "prefix starting with '-'", key: "-example.com/a", rules: ["prefix part must start with an alphanumeric character"] },
    { name: "empty prefix", key: "/a", rules: ["prefix part must not be empty (omit the '/' for a key without a prefix)"] },
    { name: "empty name after prefix", key: "example.com/", rules: ["name part must not be empty"] },
    { name: "bad name after prefix", key: "example.com/-a", rules: [`name part ${START}`] },
    {
      name: "two slashes",
      key: "a/b/c",
      rules: [
        "must contain at most one '/' (an optional DNS subdomain prefix and '/', then a name, e.g. \"example.com/my-name\")",
      ],
    },
  ];
  it.each(rows)("$name", ({ key, rules }) => {
    expect(labelKeyViolations(key)).toEqual(rules);
  });
});

describe("labelValueViolations", () => {
  const rows: { name: string; value: string; rules: string[] }[] = [
    { name: "empty value is allowed", value: "", rules: [] },
    { name: "plain value", value: "linux", rules: [] },
    { name: "value with '-', '_', '.' and upper case", value: "Ubuntu_22.04-LTS", rules: [] },
    { name: "63 characters (boundary)", value: "v".repeat(63), rules: [] },
    { name: "64 characters (boundary)", value: "v".repeat(64), rules: ["must be no more than 63 characters"] },
    { name: "'/' is not allowed", value: "a/b", rules: [CHARS] },
    { name: "space is not allowed", value: "a b", rules: [CHARS] },
    { name: "starts with '.'", value: ".a", rules: [START] },
    { name: "ends with '-'", value: "a-", rules: [END] },
    { name: "only '_'", value: "_", rules: [START, END] },
  ];
  it.each(rows)("$name", ({ value, rules }) => {
    expect(labelValueViolations(value)).toEqual(rules);
  });
});

describe("labelsViolations", () => {
  it("names each bad entry by its key, with key rules prefixed by 'key'", () => {
    expect(labelsViolations({ "kubernetes.io/os": "-linux", "-bad": "ok", good: "yes" }, "metadata.labels")).toEqual([
      { field: 'metadata.labels["kubernetes.io/os"]', value: "-linux", rule: START },
      { field: 'metadata.labels["-bad"]', value: "-bad", rule: `key ${START}` },
    ]);
  });

  it("accepts a label named like an Object.prototype property", () => {
    expect(labelsViolations({ constructor: "x", toString: "" }, "metadata.labels")).toEqual([]);
  });
});

describe("annotationsViolations", () => {
  const LIMIT = 256 * 1024;
  const rows: { name: string; annotations: Record<string, string>; fields: string[] }[] = [
    { name: "no annotations", annotations: {}, fields: [] },
    { name: "free-form values", annotations: { "example.com/note": "any text: / = , 'quoted' ünïcode" }, fields: [] },
    { name: "exactly 256 KiB of keys and values (boundary)", annotations: { k: "v".repeat(LIMIT - 1) }, fields: [] },
    {
      name: "256 KiB + 1 byte (boundary)",
      annotations: { k: "v".repeat(LIMIT) },
      fields: ["metadata.annotations"],
    },
    {
      name: "size counts UTF-8 bytes",
      annotations: { k: "é".repeat(LIMIT / 2) },
      fields: ["metadata.annotations"],
    },
    {
      name: "size sums every key and value",
      annotations: { a: "v".repeat(LIMIT / 2), b: "v".repeat(LIMIT / 2) },
      fields: ["metadata.annotations"],
    },
    { name: "key validated as a label key", annotations: { "bad key": "x" }, fields: ['metadata.annotations["bad key"]'] },
  ];
  it.each(rows)("$name", ({ annotations, fields }) => {
    expect(annotationsViolations(annotations, "metadata.annotations").map((v) => v.field)).toEqual(fields);
  });

  it("says the size and the limit", () => {
    expect(annotationsViolations({ k: "v".repeat(LIMIT) }, "metadata.annotations")).toEqual([
      {
        field: "metadata.annotations",
        value: `${LIMIT + 1} bytes`,
        rule: "total size of keys and values must be no more than 262144 bytes (256 KiB)",
      },
    ]);
  });

  it("says what is wrong with a key", () => {
    expect(annotationsViolations({ "bad key": "x" }, "metadata.annotations")).toEqual([
      { field: 'metadata.annotations["bad key"]', value: "bad key", rule: `key ${CHARS}` },
    ]);
  });
});

describe("label keys and values agree with Kubernetes' regexes", () => {
  const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
  const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
  const isName = (s: string): boolean => s.length <= 63 && NAME.test(s);
  const isKey = (s: string): boolean => {
    const parts = s.split("/");
    if (parts.length === 1) return isName(s);
    return parts.length === 2 && parts[0]!.length <= 253 && SUBDOMAIN.test(parts[0]!) && isName(parts[1]!);
  };
  const inputs = [...sampleStrings("aZ0-._/ ", 5000, 9), "k".repeat(63), "k".repeat(64), `${PREFIX_253}/x`, `${PREFIX_253}a/x`];
  it("a key is valid exactly when IsQualifiedName accepts it", () => {
    for (const key of inputs) expect(labelKeyViolations(key).length === 0, JSON.stringify(key)).toBe(isKey(key));
  });
  it("a value is valid exactly when IsValidLabelValue accepts it", () => {
    for (const value of inputs) expect(labelValueViolations(value).length === 0, JSON.stringify(value)).toBe(value === "" || isName(value));
  });
});
