/**
 * A node filter built from a request's label and field selectors, shared by ListNodes and
 * Watch. `name` is set when the field selector pins metadata.name, so watchers of one node
 * can be indexed by name instead of being tested against every change.
 */
import type { Node } from "../gen/nodeplane/v1/node.js";
import { exactNameOf, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from "../validation/selector.js";

export interface NodeFilter {
  matches(node: Node): boolean;
  /** The one node name the filter can match, if it pins one. */
  name?: string;
  /** True when the filter matches every node. */
  everything: boolean;
}

export function compileFilter(labelSelector: string, fieldSelector: string): NodeFilter {
  const labels = parseLabelSelector(labelSelector);
  const fields = parseFieldSelector(fieldSelector);
  const everything = labelSelector.trim() === "" && fieldSelector.trim() === "";
  return {
    everything,
    name: exactNameOf(fields),
    matches: everything ? () => true : (node) => matchesLabels(labels, node.metadata?.labels) && matchesFields(fields, node),
  };
}
