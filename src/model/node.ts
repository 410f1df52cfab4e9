/** The node as the server works with it: every part present. */
import { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import { type Node, NodeSpec, NodeStatus } from "../gen/nodeplane/v1/node.js";

/** A Node whose metadata, spec and status are present (what the registry, the watch cache and the controllers work with). */
export type FullNode = Node & { metadata: ObjectMeta; spec: NodeSpec; status: NodeStatus };

/**
 * Fill absent parts with their defaults. The parts `node` has are shared, not copied: nothing
 * here or in the registry modifies a part it was given (changes build new objects).
 */
export function fullNode(node: Node | undefined): FullNode {
  return {
    metadata: node?.metadata ?? ObjectMeta.fromPartial({}),
    spec: node?.spec ?? NodeSpec.fromPartial({}),
    status: node?.status ?? NodeStatus.fromPartial({}),
  };
}
