/**
 * A store whose first list of one prefix waits until the test opens the gate: the watch cache
 * (or an informer) stays "still loading" for exactly as long as the test needs, without sleeps.
 * Every other call goes straight to the real store.
 */
import type { ListOptions, ListResult, Store } from "../../src/store/store.js";

export interface GatedStore {
  store: Store;
  /** Resolves when the held list has been asked for. */
  held: Promise<void>;
  /** Let the held list (and every later one) through. */
  open(): void;
}

export function gateFirstList(inner: Store, prefix: string): GatedStore {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let markHeld!: () => void;
  const held = new Promise<void>((resolve) => (markHeld = resolve));
  let first = true;
  const list = async (p: string, opts?: ListOptions): Promise<ListResult> => {
    if (p === prefix && first) {
      first = false;
      markHeld();
      await gate;
    }
    return inner.list(p, opts);
  };
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === "list") return list;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store, held, open };
}
