/**
 * Nodes over gRPC as a ListerWatcher (src/informer/source.ts), for the SDK's Informer: ListNodes
 * in pages, Watch from a revision with bookmarks, both filtered by the server's selectors.
 */
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { FailureKind, ListerWatcher, ListPage, SourceChange } from "../informer/source.js";
import type { NodeClient } from "./client.js";
import { InvalidArgumentError, OutOfRangeError } from "./errors.js";

export function nodeSource(o: { client: NodeClient; labelSelector: string; fieldSelector: string; pageSize: number }): ListerWatcher<Node> {
  const { client, labelSelector, fieldSelector, pageSize } = o;
  return {
    async list(next: string | undefined, signal: AbortSignal): Promise<ListPage<Node>> {
      const page = await client.listNodes({ labelSelector, fieldSelector, limit: pageSize, continueToken: next ?? "" }, { signal });
      return {
        items: page.nodes.map((node) => ({ name: nameOf(node), revision: Number(node.metadata?.resourceVersion ?? 0), decode: () => node })),
        revision: Number(page.resourceVersion),
        next: page.continueToken || undefined,
      };
    },

    async watch(afterRevision, sink, signal): Promise<void> {
      const events = client.watch({ resourceVersion: String(afterRevision), allowBookmarks: true, labelSelector, fieldSelector }, { signal });
      for await (const ev of events) {
        if (signal.aborted) return;
        const revision = Number(ev.resourceVersion);
        const name = nameOf(ev.node);
        let change: SourceChange<Node> | undefined;
        if (ev.type === "ADDED" || ev.type === "MODIFIED") change = { type: "put", name, revision, decode: () => ev.node };
        else if (ev.type === "DELETED") change = { type: "delete", name, revision, last: ev.node };
        else if (ev.type !== "BOOKMARK") continue; // a type this SDK does not know vouches for nothing
        sink({ changes: change ? [change] : [], revision });
      }
    },

    classify(err: unknown): FailureKind {
      // INVALID_ARGUMENT here means our revision is newer than the server's (its data was
      // replaced): as client-go does for "too large resource version", list again.
      return err instanceof OutOfRangeError || err instanceof InvalidArgumentError ? "relist" : "retry";
    },
  };
}

const nameOf = (node: Node): string => node.metadata?.name ?? "";
