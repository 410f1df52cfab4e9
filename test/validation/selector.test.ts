import { describe, expect, it } from "vitest";
import { quote } from "../../src/errors.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import {
  exactNameOf,
  type FieldSelector,
  type LabelSelector,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from "../../src/validation/selector.js";
import { invalidErrorOf } from "./helpers.js";

const LABELS = { env: "prod", tier: "web", zone: "a", empty: "" };

describe("parseLabelSelector: structure", () => {
  const rows: { name: string; input: string; selector: LabelSelector }[] = [
    { name: "empty string selects everything", input: "", selector: { requirements: [] } },
    { name: "whitespace only selects everything", input: "  \t\n ", selector: { requirements: [] } },
    { name: "=", input: "a=b", selector: { requirements: [{ key: "a", operator: "Equals", values: ["b"] }] } },
    { name: "==", input: "a==b", selector: { requirements: [{ key: "a", operator: "Equals", values: ["b"] }] } },
    { name: "!=", input: "a!=b", selector: { requirements: [{ key: "a", operator: "NotEquals", values: ["b"] }] } },
    { name: "in", input: "a in (b,c)", selector: { requirements: [{ key: "a", operator: "In", values: ["b", "c"] }] } },
    { name: "notin", input: "a notin (b)", selector: { requirements: [{ key: "a", operator: "NotIn", values: ["b"] }] } },
    { name: "exists", input: "a", selector: { requirements: [{ key: "a", operator: "Exists", values: [] }] } },
    { name: "does not exist", input: "!a", selector: { requirements: [{ key: "a", operator: "DoesNotExist", values: [] }] } },
    {
      name: "the API's example",
      input: "a=b,c!=d,e in (f,g),h notin (i),j,!k",
      selector: {
        requirements: [
          { key: "a", operator: "Equals", values: ["b"] },
          { key: "c", operator: "NotEquals", values: ["d"] },
          { key: "e", operator: "In", values: ["f", "g"] },
          { key: "h", operator: "NotIn", values: ["i"] },
          { key: "j", operator: "Exists", values: [] },
          { key: "k", operator: "DoesNotExist", values: [] },
        ],
      },
    },
    {
      name: "whitespace around every token",
      input: "  a = b ,\tc != d , e in ( f , g ) , h notin(i) , j , ! k  ",
      selector: {
        requirements: [
          { key: "a", operator: "Equals", values: ["b"] },
          { key: "c", operator: "NotEquals", values: ["d"] },
          { key: "e", operator: "In", values: ["f", "g"] },
          { key: "h", operator: "NotIn", values: ["i"] },
          { key: "j", operator: "Exists", values: [] },
          { key: "k", operator: "DoesNotExist", values: [] },
        ],
      },
    },
    {
      name: "prefixed keys",
      input: "kubernetes.io/os=linux,!node-role.kubernetes.io/control-plane",
      selector: {
        requirements: [
          { key: "kubernetes.io/os", operator: "Equals", values: ["linux"] },
          { key: "node-role.kubernetes.io/control-plane", operator: "DoesNotExist", values: [] },
        ],
      },
    },
    {
      name: "keywords are values after an operator",
      input: "a=in,b in (notin,in)",
      selector: {
        requirements: [
          { key: "a", operator: "Equals", values: ["in"] },
          { key: "b", operator: "In", values: ["notin", "in"] },
        ],
      },
    },
  ];
  it.each(rows)("$name: $input", ({ input, selector }) => {
    expect(parseLabelSelector(input)).toEqual(selector);
  });
});

describe("matchesLabels", () => {
  const rows: { name: string; selector: string; labels: Record<string, string> | undefined; matches: boolean }[] = [
    { name: "empty selector matches labels", selector: "", labels: LABELS, matches: true },
    { name: "empty selector matches no labels", selector: "", labels: undefined, matches: true },
    { name: "= matches the value", selector: "env=prod", labels: LABELS, matches: true },
    { name: "= does not match another value", selector: "env=dev", labels: LABELS, matches: false },
    { name: "= does not match an absent key", selector: "owner=me", labels: LABELS, matches: false },
    { name: "== matches the value", selector: "env==prod", labels: LABELS, matches: true },
    { name: "== does not match another value", selector: "env==dev", labels: LABELS, matches: false },
    { name: "!= matches another value", selector: "env!=dev", labels: LABELS, matches: true },
    { name: "!= does not match the value", selector: "env!=prod", labels: LABELS, matches: false },
    { name: "!= matches an absent key", selector: "owner!=me", labels: LABELS, matches: true },
    { name: "!= matches when there are no labels", selector: "owner!=me", labels: undefined, matches: true },
    { name: "in matches a listed value", selector: "tier in (db,web)", labels: LABELS, matches: true },
    { name: "in does not match an unlisted value", selector: "tier in (db,cache)", labels: LABELS, matches: false },
    { name: "in does not match an absent key", selector: "owner in (me,you)", labels: LABELS, matches: false },
    { name: "notin matches an unlisted value", selector: "tier notin (db,cache)", labels: LABELS, matches: true },
    { name: "notin does not match a listed value", selector: "tier notin (db,web)", labels: LABELS, matches: false },
    { name: "notin matches an absent key", selector: "owner notin (me)", labels: LABELS, matches: true },
    { name: "exists matches a present key", selector: "zone", labels: LABELS, matches: true },
    { name: "exists matches a present key with an empty value", selector: "empty", labels: LABELS, matches: true },
    { name: "exists does not match an absent key", selector: "owner", labels: LABELS, matches: false },
    { name: "exists does not match when there are no labels", selector: "zone", labels: undefined, matches: false },
    { name: "'a=' matches the empty value", selector: "empty=", labels: { empty: "" }, matches: true },
    { name: "'a=' does not match a non-empty value", selector: "env=", labels: LABELS, matches: false },
    { name: "'a!=' matches a non-empty value before ','", selector: "env!=,zone", labels: LABELS, matches: true },
    { name: "!key matches an absent key", selector: "!owner", labels: LABELS, matches: true },
    { name: "!key does not match a present key", selector: "!zone", labels: LABELS, matches: false },
    { name: "requirements are ANDed: all hold", selector: "env=prod,tier in (web),!owner,zone", labels: LABELS, matches: true },
    { name: "requirements are ANDed: one fails", selector: "env=prod,tier in (web),owner", labels: LABELS, matches: false },
    { name: "the same key twice, contradicting", selector: "env=prod,env=dev", labels: LABELS, matches: false },
    { name: "inherited properties are not labels: exists", selector: "constructor", labels: {}, matches: false },
    { name: "inherited properties are not labels: !key", selector: "!toString", labels: {}, matches: true },
  ];
  it.each(rows)("$name: $selector", ({ selector, labels, matches }) => {
    expect(matchesLabels(parseLabelSelector(selector), labels)).toBe(matches);
  });
});

describe("parseLabelSelector: errors name the field, the selector and the position", () => {
  const rows: { name: string; input: string; rule: string }[] = [
    { name: "operator where a value belongs", input: "a==!=", rule: `at position 3: expected a value after '==', found "!="` },
    { name: "keyword where a key belongs", input: "in (", rule: `at position 0: expected a label key or '!', found "in"` },
    { name: "'(' missing after in", input: "a in b", rule: `at position 5: expected '(' after 'in', found "b"` },
    { name: "'(' missing after notin", input: "a notin", rule: "at position 7: expected '(' after 'notin', found end of string" },
    { name: "key missing", input: "=b", rule: `at position 0: expected a label key or '!', found "="` },
    { name: "two words", input: "a b", rule: `at position 2: expected an operator (=, ==, !=, in, notin), ',' or end of string, found "b"` },
    { name: "unclosed list", input: "a in (b", rule: "at position 7: expected ',' or ')', found end of string" },
    { name: "empty list", input: "a in ()", rule: `at position 6: expected a value after '(', found ")"` },
    { name: "empty list entry", input: "a in (b,,c)", rule: `at position 8: expected a value after ',', found ","` },
    { name: "list separated by spaces", input: "a in (b c)", rule: `at position 8: expected ',' or ')', found "c"` },
    { name: "bare '!'", input: "!", rule: "at position 1: expected a label key after '!', found end of string" },
    { name: "'!' before an operator", input: "!=a", rule: `at position 0: expected a label key or '!', found "!="` },
    { name: "trailing comma", input: "a=b,", rule: "at position 4: expected a label key or '!' after ',', found end of string" },
    { name: "leading comma", input: ",a", rule: `at position 0: expected a label key or '!', found ","` },
    { name: "double comma", input: "a,,b", rule: `at position 2: expected a label key or '!' after ',', found ","` },
    { name: "operator after !key", input: "!a=b", rule: `at position 2: expected ',' or end of string, found "="` },
    { name: "second value after =", input: "a=b c", rule: `at position 4: expected ',' or end of string, found "c"` },
    { name: "triple =", input: "a===b", rule: `at position 3: expected a value after '==', found "="` },
    { name: "unsupported >", input: "a>1", rule: `at position 1: unsupported operator: expected one of =, ==, !=, in, notin, found ">"` },
    {
      name: "bad key",
      input: "a=b,-c=d",
      rule: 'at position 4: invalid label key "-c": must start with an alphanumeric character',
    },
    {
      name: "bad value",
      input: "a in (b, c/d)",
      rule: `at position 9: invalid label value "c/d": must consist of alphanumeric characters, '-', '_' or '.'`,
    },
    {
      name: "value of 64 characters",
      input: `a=${"v".repeat(64)}`,
      rule: `at position 2: invalid label value "${"v".repeat(64)}": must be no more than 63 characters`,
    },
  ];
  it.each(rows)("$name: $input", ({ input, rule }) => {
    const e = invalidErrorOf(() => parseLabelSelector(input));
    expect(e.violations).toEqual([{ field: "label_selector", value: input, rule }]);
    expect(e.message).toBe(`label_selector: ${quote(input)}: ${rule}`);
  });
});

const node = (name: string, unschedulable: boolean): Node => Node.fromPartial({ metadata: { name }, spec: { unschedulable } });
const numaNode = (policy: string, scope: string): Node =>
  Node.fromPartial({ metadata: { name: "numa" }, status: { topology: { topologyManagerPolicy: policy, topologyManagerScope: scope } } });

describe("parseFieldSelector", () => {
  const rows: { name: string; input: string; selector: FieldSelector }[] = [
    { name: "empty string selects everything", input: "", selector: { requirements: [] } },
    { name: "whitespace only selects everything", input: "  ", selector: { requirements: [] } },
    { name: "name =", input: "metadata.name=n1", selector: { requirements: [{ field: "metadata.name", operator: "Equals", value: "n1" }] } },
    { name: "name ==", input: "metadata.name==n1", selector: { requirements: [{ field: "metadata.name", operator: "Equals", value: "n1" }] } },
    { name: "name !=", input: "metadata.name!=n1", selector: { requirements: [{ field: "metadata.name", operator: "NotEquals", value: "n1" }] } },
    {
      name: "unschedulable and name, with spaces",
      input: " spec.unschedulable = true , metadata.name != n1 ",
      selector: {
        requirements: [
          { field: "spec.unschedulable", operator: "Equals", value: "true" },
          { field: "metadata.name", operator: "NotEquals", value: "n1" },
        ],
      },
    },
    { name: "empty terms are skipped (as Kubernetes)", input: "metadata.name=n1,", selector: { requirements: [{ field: "metadata.name", operator: "Equals", value: "n1" }] } },
    {
      name: "topology policy and scope",
      input: "status.topology.topology_manager_policy=single-numa-node,status.topology.topology_manager_scope!=pod",
      selector: {
        requirements: [
          { field: "status.topology.topology_manager_policy", operator: "Equals", value: "single-numa-node" },
          { field: "status.topology.topology_manager_scope", operator: "NotEquals", value: "pod" },
        ],
      },
    },
    {
      name: "topology policy empty: nodes reporting no topology",
      input: "status.topology.topology_manager_policy=",
      selector: { requirements: [{ field: "status.topology.topology_manager_policy", operator: "Equals", value: "" }] },
    },
  ];
  it.each(rows)("$name: $input", ({ input, selector }) => {
    expect(parseFieldSelector(input)).toEqual(selector);
  });

  const errors: { name: string; input: string; rule: string }[] = [
    {
      name: "unknown field",
      input: "status.phase=Ready",
      rule: 'at position 0: unknown field "status.phase": supported fields are metadata.name, spec.unschedulable, status.topology.topology_manager_policy and status.topology.topology_manager_scope',
    },
    {
      name: "unknown field in the second term",
      input: "metadata.name=n1, spec.providerID=x",
      rule: 'at position 18: unknown field "spec.providerID": supported fields are metadata.name, spec.unschedulable, status.topology.topology_manager_policy and status.topology.topology_manager_scope',
    },
    {
      name: "unschedulable not a boolean",
      input: "spec.unschedulable=yes",
      rule: 'at position 19: spec.unschedulable must be "true" or "false", found "yes"',
    },
    {
      name: "unschedulable with upper case",
      input: "spec.unschedulable!=True",
      rule: 'at position 20: spec.unschedulable must be "true" or "false", found "True"',
    },
    {
      name: "unknown topology policy",
      input: "status.topology.topology_manager_policy=single-numa",
      rule: 'at position 40: status.topology.topology_manager_policy must be "none", "best-effort", "restricted", "single-numa-node" or "", found "single-numa"',
    },
    {
      name: "unknown topology scope",
      input: "status.topology.topology_manager_scope==node",
      rule: 'at position 40: status.topology.topology_manager_scope must be "container", "pod" or "", found "node"',
    },
    {
      name: "the camelCase JSON name (field selectors use the proto's names)",
      input: "status.topology.topologyManagerPolicy=none",
      rule: `at position 0: unknown field "status.topology.topologyManagerPolicy": supported fields are metadata.name, spec.unschedulable, status.topology.topology_manager_policy and status.topology.topology_manager_scope`,
    },
    {
      name: "no operator",
      input: "metadata.name=n1,  n2",
      rule: 'at position 19: "n2" has no operator: expected <field>=<value>, <field>==<value> or <field>!=<value>',
    },
  ];
  it.each(errors)("rejects $name: $input", ({ input, rule }) => {
    const e = invalidErrorOf(() => parseFieldSelector(input));
    expect(e.violations).toEqual([{ field: "field_selector", value: input, rule }]);
  });
});

describe("matchesFields", () => {
  const rows: { name: string; selector: string; node: Node; matches: boolean }[] = [
    { name: "empty selector", selector: "", node: node("n1", false), matches: true },
    { name: "name = matches", selector: "metadata.name=n1", node: node("n1", false), matches: true },
    { name: "name = does not match", selector: "metadata.name=n2", node: node("n1", false), matches: false },
    { name: "name == matches", selector: "metadata.name==n1", node: node("n1", false), matches: true },
    { name: "name != matches another node", selector: "metadata.name!=n2", node: node("n1", false), matches: true },
    { name: "name != does not match the node", selector: "metadata.name!=n1", node: node("n1", false), matches: false },
    { name: "unschedulable=true matches a cordoned node", selector: "spec.unschedulable=true", node: node("n1", true), matches: true },
    { name: "unschedulable=true does not match a schedulable node", selector: "spec.unschedulable=true", node: node("n1", false), matches: false },
    { name: "unschedulable=false matches a node without spec", selector: "spec.unschedulable=false", node: Node.fromPartial({ metadata: { name: "n1" } }), matches: true },
    { name: "unschedulable!=true matches a schedulable node", selector: "spec.unschedulable!=true", node: node("n1", false), matches: true },
    { name: "terms are ANDed", selector: "metadata.name=n1,spec.unschedulable=true", node: node("n1", false), matches: false },
    { name: "policy = matches the node's policy", selector: "status.topology.topology_manager_policy=restricted", node: numaNode("restricted", "pod"), matches: true },
    { name: "policy = does not match another policy", selector: "status.topology.topology_manager_policy=none", node: numaNode("restricted", "pod"), matches: false },
    { name: "policy = does not match a node without topology", selector: "status.topology.topology_manager_policy=none", node: node("n1", false), matches: false },
    { name: "policy empty matches a node without topology", selector: "status.topology.topology_manager_policy=", node: node("n1", false), matches: true },
    { name: "policy != matches a node without topology", selector: "status.topology.topology_manager_policy!=single-numa-node", node: node("n1", false), matches: true },
    { name: "scope = matches the node's scope", selector: "status.topology.topology_manager_scope=pod", node: numaNode("restricted", "pod"), matches: true },
    { name: "scope != does not match the node's scope", selector: "status.topology.topology_manager_scope!=pod", node: numaNode("restricted", "pod"), matches: false },
  ];
  it.each(rows)("$name: $selector", ({ selector, node: n, matches }) => {
    expect(matchesFields(parseFieldSelector(selector), n)).toBe(matches);
  });
});

describe("exactNameOf", () => {
  const rows: { name: string; selector: string; exact: string | undefined }[] = [
    { name: "no selector", selector: "", exact: undefined },
    { name: "name =", selector: "metadata.name=n1", exact: "n1" },
    { name: "name ==", selector: "metadata.name==n1", exact: "n1" },
    { name: "name != pins nothing", selector: "metadata.name!=n1", exact: undefined },
    { name: "unschedulable only pins nothing", selector: "spec.unschedulable=true", exact: undefined },
    { name: "name with another term", selector: "spec.unschedulable=false,metadata.name=n1", exact: "n1" },
  ];
  it.each(rows)("$name: $selector", ({ selector, exact }) => {
    expect(exactNameOf(parseFieldSelector(selector))).toBe(exact);
  });
});
