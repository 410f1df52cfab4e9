/**
 * Size limits of stored objects and of answers (issue 11, defect 2).
 *
 * Contract:
 * - A Node is stored only if its encoding is at most `maxObjectBytes` (Kubernetes: etcd's
 *   --max-request-bytes, 1.5 MiB). The registry checks it before the commit: a write refused for
 *   its size changes nothing (INVALID_ARGUMENT naming the size and the limit).
 * - Every answer that carries one object fits in one message: the server keeps
 *   `maxObjectBytes + ANSWER_OVERHEAD_BYTES <= --max-message-size` (see objectLimitFor).
 * - A node stored before the limit existed (or under a larger --max-message-size) that no
 *   longer fits in an answer is answered as a stand-in (standIn): its identity and revision, no
 *   spec or status, and an annotation saying why. Reads, lists and watches stay healthy; the
 *   node can still be deleted, or shrunk with an update.
 */
import { InvalidError } from "../errors.js";
import { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import type { Node } from "../gen/nodeplane/v1/node.js";

/** Kubernetes' object limit (etcd's default --max-request-bytes): the largest Node stored. */
const DEFAULT_MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;

/**
 * What an answer carrying one stored node adds to it, at most: its resource_version, the
 * message around it (WatchResponse, DeleteNodeResponse…) and, for Register, the node's Lease
 * (names ≤ 253 characters, holder ≤ 253, an owner reference).
 */
const ANSWER_OVERHEAD_BYTES = 16 * 1024;

/** The smallest --max-message-size the server accepts: room for a useful node and the overhead. */
export const MIN_MESSAGE_BYTES = 64 * 1024;

/** The annotation a stand-in carries. */
const OVERSIZED_ANNOTATION = "nodeplane.io/oversized";

/** The object limit under a message limit: 1.5 MiB, or less when messages are smaller. */
export function objectLimitFor(maxMessageBytes: number): number {
  return Math.min(DEFAULT_MAX_OBJECT_BYTES, maxMessageBytes - ANSWER_OVERHEAD_BYTES);
}

/** @throws InvalidError when `encoded` is over the limit. */
export function checkObjectSize(encoded: Uint8Array, maxObjectBytes: number): void {
  if (encoded.length <= maxObjectBytes) return;
  throw InvalidError.of(
    "node",
    `${encoded.length} bytes`,
    `is larger than the object size limit of ${maxObjectBytes} bytes (encoded); store less in its labels, annotations, taints, addresses, conditions or capacity`,
  );
}

/** The largest stored node an answer can carry whole under a message limit. */
export function answerLimitFor(maxMessageBytes: number): number {
  return maxMessageBytes - ANSWER_OVERHEAD_BYTES;
}

/** The stand-in answered for a stored node too large to answer (see the header). */
export function standIn(node: Node, storedBytes: number, maxObjectAnswerBytes: number): Node {
  const m = node.metadata ?? ObjectMeta.fromPartial({});
  return {
    metadata: ObjectMeta.fromPartial({
      name: m.name,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      generation: m.generation,
      creationTimestamp: m.creationTimestamp,
      annotations: {
        [OVERSIZED_ANNOTATION]:
          `the stored node is ${storedBytes} bytes, more than an answer may carry (${maxObjectAnswerBytes} bytes): ` +
          "it was stored before the object size limit or under a larger --max-message-size; its spec and status are left out. Shrink it with UpdateNode/UpdateStatus, or delete it",
      },
    }),
    spec: undefined,
    status: undefined,
  };
}
