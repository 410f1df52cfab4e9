/** drained(): waiting for a full stream, and leaving nothing behind however the wait ends. */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { drained } from "../../src/server/drain.js";

const events = ["drain", "cancelled", "close"] as const;
const listeners = (s: EventEmitter): number => events.reduce((n, e) => n + s.listenerCount(e), 0);

describe("drained", () => {
  for (const ev of events) {
    it(`resolves on '${ev}' and removes every listener it added`, async () => {
      const stream = new EventEmitter();
      let resolved = false;
      const waiting = drained(stream).then(() => (resolved = true));
      expect(listeners(stream)).toBe(3);
      await Promise.resolve();
      expect(resolved).toBe(false);
      stream.emit(ev);
      await waiting;
      expect(listeners(stream)).toBe(0);
    });
  }

  it("many waits on one long-lived stream leave nothing behind", async () => {
    const stream = new EventEmitter();
    for (let i = 0; i < 100; i++) {
      const waiting = drained(stream);
      stream.emit("drain");
      await waiting;
    }
    expect(listeners(stream)).toBe(0);
  });

  it("resolves at once for a stream already destroyed (its 'close' may have gone by)", async () => {
    const stream = Object.assign(new EventEmitter(), { destroyed: true });
    await drained(stream);
    expect(listeners(stream)).toBe(0);
  });
});
