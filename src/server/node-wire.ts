/**
 * The wire of the answers that carry a node a write just stored (UpdateStatus, UpdateNode,
 * CreateNode, Register): the server's serializers for them (nodeServiceDefinition in
 * watch-wire.ts) instead of the generated ones. The node is copied from the bytes the write
 * stored, resource_version put in (src/model/node-bytes.ts), not encoded a second time; any
 * other node (a read's, a stand-in) goes through the generated encoder.
 *
 * The bytes are exactly what the generated codecs write for the same message:
 * test/server/node-wire.test.ts compares them.
 */
import { NodeServiceService, type RegisterResponse } from "../gen/nodeplane/v1/service.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { fieldSize, leaseParts, Out, writeLeaseFields } from "../model/lease-bytes.js";
import { answerFields } from "../model/node-bytes.js";

const generated = NodeServiceService;

/** A response whose only field is the node (field 1). */
function nodeAnswer<T extends { node?: Node | undefined }>(encode: (res: T) => Buffer): (res: T) => Buffer {
  return (res) => {
    const f = res.node && answerFields(res.node);
    if (!f) return encode(res);
    return f.write(new Out(Buffer.allocUnsafe(fieldSize(f.len))).field(0x0a, f.len)).buf;
  };
}

function registerAnswer(res: RegisterResponse): Buffer {
  const f = res.node && answerFields(res.node);
  if (!f) return generated.register.responseSerialize(res);
  const p = res.lease && leaseParts(res.lease);
  const out = new Out(Buffer.allocUnsafe(fieldSize(f.len) + (p ? fieldSize(p.len) : 0)));
  f.write(out.field(0x0a, f.len));
  if (p) writeLeaseFields(out.field(0x12, p.len), p);
  return out.buf;
}

export const nodeAnswerSerializers = {
  updateStatus: { ...generated.updateStatus, responseSerialize: nodeAnswer(generated.updateStatus.responseSerialize) },
  updateNode: { ...generated.updateNode, responseSerialize: nodeAnswer(generated.updateNode.responseSerialize) },
  createNode: { ...generated.createNode, responseSerialize: nodeAnswer(generated.createNode.responseSerialize) },
  register: { ...generated.register, responseSerialize: registerAnswer },
};
