/** Taints in the kubelet's and kubectl's text form: key=value:Effect (value optional). */
import { InvalidError } from "../errors.js";
import type { Taint } from "../gen/nodeplane/v1/node.js";

const EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

export function parseTaintSpec(spec: string, field: string): Taint[] {
  return spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const m = /^([^=:]+)(?:=([^:]*))?:([A-Za-z]+)$/.exec(item);
      if (!m || !EFFECTS.includes(m[3]!)) {
        throw InvalidError.of(field, item, `must be key[=value]:Effect with Effect one of ${EFFECTS.join(", ")}`);
      }
      return { key: m[1]!, value: m[2] ?? "", effect: m[3]!, timeAdded: undefined };
    });
}
