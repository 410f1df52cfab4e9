/**
 * The fan-out writer's UpdateStatus requests, built cheaply: each node's
 * realistic status (a few KB) is encoded once without its conditions; a write encodes only the
 * conditions (every heartbeat time, and the Ready message carrying the write's stamp) and
 * splices them in. Protobuf allows it: a message's encoding is the concatenation of its fields'
 * encodings in any order (repeated fields keep theirs), so the server decodes exactly the request
 * that encoding it whole gives (test/bench/fanout-request.test.ts holds this to it).
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { NodeStatus } from "../src/gen/nodeplane/v1/node.js";
import { UpdateStatusRequest } from "../src/gen/nodeplane/v1/service.js";
import { fieldSize, Out } from "../src/model/lease-bytes.js";
import { realisticStatus } from "../test/support/realistic-node.js";

/** UpdateStatusRequest.status is field 2, length-delimited: (2 << 3) | 2. */
const STATUS_TAG = 0x12;

interface Parts {
  /** UpdateStatusRequest with the name only. */
  head: Uint8Array;
  /** NodeStatus without its conditions. */
  rest: Uint8Array;
  conditions: NodeStatus["conditions"];
}

export class StampedRequests {
  private readonly parts = new Map<number, Parts>();
  /** Reused for every conditions encode: a fresh writer starts at 128 bytes and grows by copying. */
  private readonly writer = new BinaryWriter();

  /** The UpdateStatusRequest of node `i` (named `name`) for write `seq` issued at `t` (epoch ms). */
  request(i: number, name: string, seq: number, t: number): Uint8Array {
    let p = this.parts.get(i);
    if (!p) {
      const status = NodeStatus.fromPartial(realisticStatus(i, name));
      p = {
        head: UpdateStatusRequest.encode({ name, resourceVersion: "" }).finish(),
        rest: NodeStatus.encode({ ...status, conditions: [] }).finish(),
        conditions: status.conditions,
      };
      this.parts.set(i, p);
    }
    const conditions = NodeStatus.encode(NodeStatus.fromPartial({ conditions: stamp(p.conditions, `bench seq=${seq} t=${t.toFixed(3)}`, new Date(t)) }), this.writer).finish();
    const len = p.rest.length + conditions.length;
    return new Out(Buffer.allocUnsafe(p.head.length + fieldSize(len))).bytes(p.head).field(STATUS_TAG, len).bytes(p.rest).bytes(conditions).buf;
  }
}

function stamp(conditions: NodeStatus["conditions"], message: string, at: Date): NodeStatus["conditions"] {
  return conditions.map((c) => (c.type === "Ready" ? { ...c, message, lastHeartbeatTime: at } : { ...c, lastHeartbeatTime: at }));
}
