/**
 * The changes `label`, `taint`, `cordon` and `uncordon` make, as pure functions with
 * kubectl's semantics and messages. The commands apply them to the stored node and send it
 * back with its resourceVersion as a precondition.
 */
import type { Taint } from "../../gen/nodeplane/v1/node.js";
import { labelKeyViolations, labelValueViolations } from "../../validation/labels.js";
import { CliError } from "./errors.js";
import { formatTaint } from "../../model/columns.js";

export interface LabelChange {
  set: Record<string, string>;
  remove: string[];
}

/** Whether a command-line argument is a label change (k=v or k-) rather than a name. */
export const isLabelArg = (arg: string): boolean => arg.includes("=") || arg.endsWith("-");
/** Whether a command-line argument is a taint change (k=v:E, k:E, k:E-, k-) rather than a name. */
export const isTaintArg = (arg: string): boolean => arg.includes("=") || arg.includes(":") || arg.endsWith("-");

/** kubectl's parseLabels: k=v to set, k- to remove. */
export function parseLabelArgs(args: readonly string[]): LabelChange {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const spec of args) {
    if (spec.includes("=")) {
      const parts = spec.split("=");
      if (parts.length !== 2) throw new CliError(`invalid label spec: ${spec}`);
      const [key, value] = parts as [string, string];
      const keyErrs = labelKeyViolations(key);
      if (keyErrs.length > 0) throw new CliError(`invalid label key: ${JSON.stringify(spec)}: ${keyErrs.join("; ")}`);
      const valueErrs = labelValueViolations(value);
      if (valueErrs.length > 0) throw new CliError(`invalid label value: ${JSON.stringify(spec)}: ${valueErrs.join("; ")}`);
      set[key] = value;
    } else if (spec.endsWith("-")) {
      remove.push(spec.slice(0, -1));
    } else {
      throw new CliError(`unknown label spec: ${spec}`);
    }
  }
  if (remove.some((k) => Object.hasOwn(set, k))) throw new CliError("can not both modify and remove a label in the same command");
  if (Object.keys(set).length === 0 && remove.length === 0) throw new CliError("at least one label update is required");
  return { set, remove };
}

export interface LabelOutcome {
  labels: Record<string, string>;
  /** "labeled", "unlabeled" or "not labeled" (kubectl's words). */
  verb: "labeled" | "unlabeled" | "not labeled";
  /** Keys asked to be removed that the node does not have. */
  notFound: string[];
}

/** Apply a label change; refuses to change an existing value without `overwrite`, as kubectl does. */
export function applyLabels(current: Record<string, string>, change: LabelChange, overwrite: boolean): LabelOutcome {
  if (!overwrite) {
    const clashes = Object.entries(change.set)
      .filter(([k, v]) => Object.hasOwn(current, k) && current[k] !== v)
      .map(([k]) => `'${k}' already has a value (${current[k]}), and --overwrite is false`);
    if (clashes.length === 1) throw new CliError(clashes[0]!);
    if (clashes.length > 1) throw new CliError(`[${clashes.join(", ")}]`);
  }
  const labels = { ...current };
  const notFound = change.remove.filter((k) => !Object.hasOwn(current, k));
  for (const k of change.remove) delete labels[k];
  Object.assign(labels, change.set);
  const setSomething = Object.entries(change.set).some(([k, v]) => current[k] !== v);
  const removedSomething = change.remove.length > notFound.length;
  const verb = setSomething ? "labeled" : removedSomething ? "unlabeled" : "not labeled";
  return { labels, verb, notFound };
}

const EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

export interface TaintChange {
  add: Taint[];
  /** Effect "" removes every taint with the key. */
  remove: { key: string; effect: string }[];
}

/** kubectl's parseTaint: key=value:effect, key:effect, or key (the last for removal only). */
function parseTaint(spec: string): Taint {
  const parts = spec.split(":");
  let key: string;
  let value = "";
  let effect = "";
  if (parts.length === 1) {
    key = parts[0]!;
  } else if (parts.length === 2) {
    effect = parts[1]!;
    if (!EFFECTS.includes(effect)) throw new CliError(`invalid taint effect: ${effect}, unsupported taint effect (one of ${EFFECTS.join(", ")})`);
    const kv = parts[0]!.split("=");
    if (kv.length > 2) throw new CliError(`invalid taint spec: ${spec}`);
    key = kv[0]!;
    if (kv.length === 2) {
      value = kv[1]!;
      const errs = labelValueViolations(value);
      if (errs.length > 0) throw new CliError(`invalid taint spec: ${spec}, ${errs.join("; ")}`);
    }
  } else {
    throw new CliError(`invalid taint spec: ${spec}`);
  }
  const errs = labelKeyViolations(key);
  if (errs.length > 0) throw new CliError(`invalid taint spec: ${spec}, ${errs.join("; ")}`);
  return { key, value, effect, timeAdded: undefined };
}

/** kubectl's parseTaints: k=v:Effect and k:Effect add, k:Effect- and k- remove. */
export function parseTaintArgs(args: readonly string[]): TaintChange {
  const add: Taint[] = [];
  const remove: { key: string; effect: string }[] = [];
  for (const spec of args) {
    if (spec.endsWith("-")) {
      const t = parseTaint(spec.slice(0, -1));
      remove.push({ key: t.key, effect: t.effect });
    } else {
      const t = parseTaint(spec);
      if (t.effect === "") throw new CliError(`invalid taint spec: ${spec} (expected key=value:Effect or key:Effect; key- or key:Effect- to remove)`);
      if (add.some((a) => a.key === t.key && a.effect === t.effect)) {
        throw new CliError(`duplicated taints with the same key and effect: ${formatTaint(t)}`);
      }
      add.push(t);
    }
  }
  if (add.length === 0 && remove.length === 0) throw new CliError("at least one taint update is required");
  return { add, remove };
}

export interface TaintOutcome {
  taints: Taint[];
  /** "tainted", "untainted" or "modified" (kubectl's words). */
  verb: "tainted" | "untainted" | "modified";
}

/**
 * Apply a taint change with kubectl's rules: adding a key and effect the node already has
 * needs `overwrite`; removing a taint the node does not have is an error; the taints not
 * mentioned are kept, in their order, after the new ones.
 */
export function applyTaints(nodeName: string, current: readonly Taint[], change: TaintChange, overwrite: boolean): TaintOutcome {
  if (!overwrite) {
    const exists = change.add.filter((t) => current.some((c) => c.key === t.key && c.effect === t.effect)).map((t) => t.key);
    if (exists.length > 0) {
      throw new CliError(`node ${nodeName} already has ${exists.join(",")} taint(s) with same effect(s) and --overwrite is false`);
    }
  }
  const kept = current.filter((c) => !change.add.some((t) => t.key === c.key && t.effect === c.effect));
  let taints = [...change.add, ...kept];
  for (const r of change.remove) {
    const matches = (t: Taint): boolean => t.key === r.key && (r.effect === "" || t.effect === r.effect);
    if (!taints.some(matches)) throw new CliError(`taint ${JSON.stringify(formatTaint({ ...r, value: "" }))} not found`);
    taints = taints.filter((t) => !matches(t));
  }
  const verb = (change.add.length > 0 && change.remove.length > 0) || overwrite ? "modified" : change.add.length > 0 ? "tainted" : "untainted";
  return { taints, verb };
}
