/**
 * A store whose transactions the test can see and hold: every txn is recorded (the keys it puts),
 * and while `hold()` is in force txns wait until the returned release function is called (or
 * fail with the error given to it). Everything else goes straight to the real store.
 */
import type { Store, TxnRequest, TxnResult } from "../../src/store/store.js";

export interface HeldStore {
  store: Store;
  /** The keys each txn put, in the order the txns were made. */
  readonly puts: string[][];
  /** Hold every txn (or those `which` picks) from now on; the returned function lets them through (or fails them with `err`). */
  hold(which?: (req: TxnRequest) => boolean): (err?: Error) => void;
  /** Resolves once `n` txns are waiting behind a hold. */
  waiting(n: number): Promise<void>;
}

export function heldStore(inner: Store): HeldStore {
  const puts: string[][] = [];
  let gate: Promise<Error | undefined> | undefined;
  let picks: (req: TxnRequest) => boolean = () => true;
  let held = 0;
  const waiters: { n: number; resolve(): void }[] = [];
  const txn = async (req: TxnRequest): Promise<TxnResult> => {
    puts.push(req.ops.filter((op) => op.type === "put").map((op) => op.key));
    if (gate && picks(req)) {
      const g = gate;
      held++;
      for (const w of waiters.filter((w) => held >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      const err = await g;
      held--;
      if (err) throw err;
    }
    return inner.txn(req);
  };
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === "txn") return txn;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    store,
    puts,
    hold(which = () => true) {
      picks = which;
      let release!: (err?: Error) => void;
      gate = new Promise<Error | undefined>((resolve) => (release = resolve));
      return (err?: Error) => {
        gate = undefined;
        release(err);
      };
    },
    waiting(n) {
      if (held >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
  };
}
