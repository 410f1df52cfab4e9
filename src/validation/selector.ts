/**
 * Label and field selectors, as ListNodes and Watch take them.
 *
 * Label selectors follow Kubernetes' labels.Parse: `a=b,c!=d,e in (f,g),h notin (i),j,!k`
 * (also `==`), whitespace between tokens ignored, requirements ANDed, keys validated as
 * label keys and values as label values. `a=` and `a!=` compare with the empty value, as
 * in Kubernetes; `a in ()` is rejected (Kubernetes requires a non-empty set) and so are empty
 * list entries. `<` and `>` are not supported.
 *
 * Field selectors follow Kubernetes' fields.ParseSelector for the fields a Node supports:
 * `metadata.name`, `spec.unschedulable`, `status.topology.topology_manager_policy` and
 * `status.topology.topology_manager_scope` (the empty value: the node reports no topology),
 * with `=`, `==`, `!=`, terms ANDed by commas. Counts (NUMA zones) are selected through the
 * agent's `topology.nodeplane.io/numa-zones` label instead.
 *
 * Parsed selectors are plain data (they can be logged, compared and copied).
 */
import { InvalidError, quote } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { labelKeyViolations, labelValueViolations } from "./labels.js";
import { TOPOLOGY_MANAGER_POLICIES, TOPOLOGY_MANAGER_SCOPES } from "./topology.js";

export interface LabelRequirement {
  key: string;
  operator: "Equals" | "NotEquals" | "In" | "NotIn" | "Exists" | "DoesNotExist";
  /** One value for Equals/NotEquals, one or more for In/NotIn, none for Exists/DoesNotExist. */
  values: string[];
}

/** Requirements, all of which must hold; none matches everything. */
export interface LabelSelector {
  requirements: LabelRequirement[];
}

export interface FieldRequirement {
  field: "metadata.name" | "spec.unschedulable" | "status.topology.topology_manager_policy" | "status.topology.topology_manager_scope";
  operator: "Equals" | "NotEquals";
  /** One of the field's values when it has a fixed set (spec.unschedulable: "true" or "false"). */
  value: string;
}

/** Requirements, all of which must hold; none matches everything. */
export interface FieldSelector {
  requirements: FieldRequirement[];
}

// ---- label selectors -------------------------------------------------------------------

type TokenKind = "ident" | "in" | "notin" | "!" | "=" | "==" | "!=" | "(" | ")" | "," | "<" | ">" | "end";

interface Token {
  kind: TokenKind;
  text: string;
  pos: number;
}

const WHITESPACE = new Set([" ", "\t", "\r", "\n"]);
const SPECIAL = new Set(["=", "!", "(", ")", ",", "<", ">"]);

function lex(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s.charAt(i);
    if (WHITESPACE.has(c)) {
      i++;
    } else if (SPECIAL.has(c)) {
      const two = s.slice(i, i + 2);
      const kind: TokenKind = two === "!=" || two === "==" ? two : (c as TokenKind);
      tokens.push({ kind, text: kind, pos: i });
      i += kind.length;
    } else {
      const start = i;
      while (i < s.length && !WHITESPACE.has(s.charAt(i)) && !SPECIAL.has(s.charAt(i))) i++;
      const text = s.slice(start, i);
      tokens.push({ kind: text === "in" || text === "notin" ? text : "ident", text, pos: start });
    }
  }
  tokens.push({ kind: "end", text: "", pos: s.length });
  return tokens;
}

class LabelParser {
  private readonly tokens: Token[];
  private i = 0;

  constructor(private readonly input: string) {
    this.tokens = lex(input);
  }

  parse(): LabelSelector {
    const requirements: LabelRequirement[] = [];
    if (this.peek().kind === "end") return { requirements };
    let context = "a label key or '!'";
    for (;;) {
      requirements.push(this.requirement(context));
      const t = this.next();
      if (t.kind === "end") return { requirements };
      if (t.kind !== ",") this.fail(t, "expected ',' or end of string");
      context = "a label key or '!' after ','";
    }
  }

  private requirement(context: string): LabelRequirement {
    const t = this.next();
    if (t.kind === "!") {
      const key = this.next();
      if (key.kind !== "ident") this.fail(key, "expected a label key after '!'");
      return { key: this.key(key), operator: "DoesNotExist", values: [] };
    }
    if (t.kind !== "ident") this.fail(t, `expected ${context}`);
    const key = this.key(t);
    const op = this.peek();
    if (op.kind === "end" || op.kind === ",") return { key, operator: "Exists", values: [] };
    this.next();
    switch (op.kind) {
      case "=":
      case "==":
        return { key, operator: "Equals", values: [this.exactValue(`a value after '${op.text}'`)] };
      case "!=":
        return { key, operator: "NotEquals", values: [this.exactValue("a value after '!='")] };
      case "in":
      case "notin":
        return { key, operator: op.kind === "in" ? "In" : "NotIn", values: this.list(op.text) };
      case "<":
      case ">":
        return this.fail(op, "unsupported operator: expected one of =, ==, !=, in, notin");
      default:
        return this.fail(op, "expected an operator (=, ==, !=, in, notin), ',' or end of string");
    }
  }

  private list(op: string): string[] {
    const open = this.next();
    if (open.kind !== "(") this.fail(open, `expected '(' after '${op}'`);
    const values = [this.value("a value after '('")];
    for (;;) {
      const t = this.next();
      if (t.kind === ")") return values;
      if (t.kind !== ",") this.fail(t, "expected ',' or ')'");
      values.push(this.value("a value after ','"));
    }
  }

  private key(t: Token): string {
    const rules = labelKeyViolations(t.text);
    if (rules.length > 0) this.fail(t, `invalid label key ${quote(t.text)}: ${rules.join(", ")}`, false);
    return t.text;
  }

  /** The value of =, == or !=: empty when the requirement ends here (`a=`, `a!=,b`). */
  private exactValue(expected: string): string {
    const t = this.peek();
    return t.kind === "end" || t.kind === "," ? "" : this.value(expected);
  }

  /** A value: any word, including the keywords "in" and "notin" (as Kubernetes allows). */
  private value(expected: string): string {
    const t = this.next();
    if (t.kind !== "ident" && t.kind !== "in" && t.kind !== "notin") this.fail(t, `expected ${expected}`);
    const rules = labelValueViolations(t.text);
    if (rules.length > 0) this.fail(t, `invalid label value ${quote(t.text)}: ${rules.join(", ")}`, false);
    return t.text;
  }

  private peek(): Token {
    return this.tokens[this.i]!; // next() never moves past the final "end" token
  }

  private next(): Token {
    const t = this.peek();
    if (this.i < this.tokens.length - 1) this.i++;
    return t;
  }

  private fail(t: Token, message: string, found = true): never {
    const what = t.kind === "end" ? "end of string" : quote(t.text);
    const rule = `at position ${t.pos}: ${message}${found ? `, found ${what}` : ""}`;
    throw InvalidError.of("label_selector", this.input, rule);
  }
}

/**
 * Parses a Kubernetes label selector; "" (or only whitespace) selects everything.
 * @throws InvalidError on field `label_selector` naming the position and what was expected.
 */
export function parseLabelSelector(s: string): LabelSelector {
  return new LabelParser(s).parse();
}

/** Kubernetes semantics: `!=` and `notin` hold when the key is absent; no requirements match all. */
export function matchesLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  return sel.requirements.every((r) => {
    // Own properties only: a label named "constructor" is not Object.prototype's.
    const value = labels !== undefined && Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
    switch (r.operator) {
      case "Exists":
        return value !== undefined;
      case "DoesNotExist":
        return value === undefined;
      case "Equals":
      case "In":
        return value !== undefined && r.values.includes(value);
      case "NotEquals":
      case "NotIn":
        return value === undefined || !r.values.includes(value);
    }
  });
}

// ---- field selectors -------------------------------------------------------------------

/** How to read a selectable field, and its values when they form a fixed set. */
interface SelectableField {
  get(node: Node): string;
  values?: readonly string[];
}

const FIELDS: Record<FieldRequirement["field"], SelectableField> = {
  "metadata.name": { get: (n) => n.metadata?.name ?? "" },
  "spec.unschedulable": { get: (n) => String(n.spec?.unschedulable ?? false), values: ["true", "false"] },
  "status.topology.topology_manager_policy": {
    get: (n) => n.status?.topology?.topologyManagerPolicy ?? "",
    values: [...TOPOLOGY_MANAGER_POLICIES, ""],
  },
  "status.topology.topology_manager_scope": {
    get: (n) => n.status?.topology?.topologyManagerScope ?? "",
    values: [...TOPOLOGY_MANAGER_SCOPES, ""],
  },
};

const FIELD_NAMES = Object.keys(FIELDS);

const isField = (f: string): f is FieldRequirement["field"] => Object.hasOwn(FIELDS, f);

/** "a", "b" or "c" (quoted), as the rules name allowed values. */
const alternatives = (values: readonly string[]): string => {
  const q = values.map((v) => quote(v));
  return q.length < 2 ? q.join("") : `${q.slice(0, -1).join(", ")} or ${q.at(-1)}`;
};

/** `<field> <op> <value>`: the first operator wins (as in Kubernetes: "!=" before "==" before "="). */
const TERM = /^(\s*)(.*?)(\s*)(!=|==|=)(\s*)(.*?)\s*$/s;

function fieldSelectorError(s: string, pos: number, rule: string): InvalidError {
  return InvalidError.of("field_selector", s, `at position ${pos}: ${rule}`);
}

/**
 * Parses a field selector over the fields above (`=`, `==`, `!=`, comma = AND); "" (or only
 * whitespace) selects everything.
 * @throws InvalidError on field `field_selector` naming the position and the problem.
 */
export function parseFieldSelector(s: string): FieldSelector {
  const requirements: FieldRequirement[] = [];
  let termStart = 0;
  for (const term of s.split(",")) {
    const at = termStart;
    termStart += term.length + 1;
    if (term.trim() === "") continue; // as Kubernetes: empty terms are skipped
    const m = TERM.exec(term);
    if (!m) {
      const pos = at + term.length - term.trimStart().length;
      throw fieldSelectorError(
        s,
        pos,
        `${quote(term.trim())} has no operator: expected <field>=<value>, <field>==<value> or <field>!=<value>`,
      );
    }
    const [, lead = "", field = "", gap = "", op = "", gap2 = "", value = ""] = m;
    const fieldPos = at + lead.length;
    if (!isField(field)) {
      const names = `${FIELD_NAMES.slice(0, -1).join(", ")} and ${FIELD_NAMES.at(-1)}`;
      throw fieldSelectorError(s, fieldPos, `unknown field ${quote(field)}: supported fields are ${names}`);
    }
    const values = FIELDS[field].values;
    if (values !== undefined && !values.includes(value)) {
      const valuePos = fieldPos + field.length + gap.length + op.length + gap2.length;
      throw fieldSelectorError(s, valuePos, `${field} must be ${alternatives(values)}, found ${quote(value)}`);
    }
    requirements.push({ field, operator: op === "!=" ? "NotEquals" : "Equals", value });
  }
  return { requirements };
}

/** Whether `node` satisfies every requirement; no requirements match all. */
export function matchesFields(sel: FieldSelector, node: Node): boolean {
  return sel.requirements.every((r) => (FIELDS[r.field].get(node) === r.value) === (r.operator === "Equals"));
}

/** The node name a field selector pins with `metadata.name=X` (or `==`), if any. */
export function exactNameOf(fieldSelector: FieldSelector): string | undefined {
  return fieldSelector.requirements.find((r) => r.field === "metadata.name" && r.operator === "Equals")?.value;
}
