/**
 * The store lister-watcher hands a watched change's stored bytes on only when asked
 * (`passStored`, the node informer), and as bytes of their own: an etcd value is a view into
 * the watch response it came in, which a kept view would keep whole.
 */
import { describe, expect, it } from "vitest";
import { storeSource } from "../../src/informer/store-source.js";
import type { SourceChange } from "../../src/informer/source.js";
import type { Store, WatchListener } from "../../src/store/store.js";

/** A store whose watch delivers one put of `value`, then nothing. */
function storeWith(value: Uint8Array): Store {
  const watch = (_prefix: string, _after: number, listener: WatchListener) => {
    queueMicrotask(() => listener.onEvents([{ type: "put", kv: { key: "/p/a", value, createRevision: 2, modRevision: 2 } }]));
    return { cancel: () => {} };
  };
  return { watch } as unknown as Store;
}

async function firstChange(value: Uint8Array, passStored: boolean): Promise<SourceChange<string>> {
  const source = storeSource({ store: storeWith(value), prefix: "/p/", decode: (kv) => kv.key, passStored });
  const abort = new AbortController();
  const change = await new Promise<SourceChange<string>>((resolve) => {
    void source.watch(1, (batch) => resolve(batch.changes[0]!), abort.signal);
  });
  abort.abort();
  return change;
}

describe("a watched change's stored bytes", () => {
  it("are a copy of their own when the value is a view into a larger buffer (an etcd response)", async () => {
    const response = Buffer.from("....the value....");
    const view = response.subarray(4, 13);
    const change = await firstChange(view, true);
    const stored = change.type === "put" ? change.stored : undefined;
    expect(Buffer.from(stored!).toString()).toBe("the value");
    expect(stored!.buffer).not.toBe(response.buffer);
    expect(stored!.byteLength).toBe(stored!.buffer.byteLength);
  });

  it("are the value itself when it has a buffer of its own", async () => {
    const value = new Uint8Array([1, 2, 3]);
    const change = await firstChange(value, true);
    expect(change.type === "put" && change.stored).toBe(value);
  });

  it("are not handed on unless asked for", async () => {
    const change = await firstChange(new Uint8Array([1, 2, 3]), false);
    expect(change.type === "put" && change.stored).toBeUndefined();
  });
});
