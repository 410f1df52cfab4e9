/**
 * The OpenAPI documents `kubectl create -f` and `kubectl apply -f` fetch before they send
 * anything (unless `--validate=false`): `/openapi/v3` (JSON), then `/openapi/v2` (protobuf,
 * gnostic's openapi_v2.Document). A 404 on v2 makes kubectl refuse ("failed to download
 * openapi").
 *
 * nodeplane serves them minimal, on purpose: a v2 document with no definitions and a v3
 * index with no group versions. kubectl then finds no schema for Node, skips client-side
 * validation and sends `fieldValidation=Strict`, so the server validates (unknown fields are
 * refused with 400 naming them, bad values with 422 naming the field); `apply` computes its
 * strategic merge patch from kubectl's built-in Node type. One set of rules, on the server.
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { KUBE_MAJOR, KUBE_MINOR } from "./discovery.js";

/** What Kubernetes answers the protobuf document with (a media type Go's mime parser accepts). */
export const OPENAPI_V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/** openapi_v2.Document { swagger = 1; info = 2 { title = 1; version = 2 } }. */
export function openapiV2(): Buffer {
  const w = new BinaryWriter();
  w.uint32((1 << 3) | 2).string("2.0");
  w.uint32((2 << 3) | 2).fork();
  w.uint32((1 << 3) | 2).string("nodeplane");
  w.uint32((2 << 3) | 2).string(`v${KUBE_MAJOR}.${KUBE_MINOR}.0`);
  w.join();
  return Buffer.from(w.finish());
}

/** The OpenAPI v3 index: no group version has a document. */
export function openapiV3(): object {
  return { paths: {} };
}
