/**
 * When the agent renews its certificate: at 70–90 % of its life, and a year-long certificate
 * really waits months (a timer longer than 24.8 days would fire at once).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { renewalTime, sleepUntil } from "../../src/auth/node-certificates.js";

const DAY = 24 * 3_600_000;

describe("certificate rotation schedule", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("renews between 70 % and 90 % of the certificate's life", () => {
    expect(renewalTime(0, 1000, [0.7, 0.9], () => 0)).toBe(700);
    expect(renewalTime(0, 1000, [0.7, 0.9], () => 1)).toBe(900);
    expect(renewalTime(1000, 366 * DAY + 1000, undefined, () => 0.5)).toBe(1000 + 0.8 * 366 * DAY);
  });

  it("waits the whole way for a renewal months ahead, and stops when aborted", async () => {
    vi.useFakeTimers({ now: 0 });
    const at = 292 * DAY; // 80 % of a year
    let done = false;
    const waiting = sleepUntil(at, new AbortController().signal).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(291 * DAY);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(DAY);
    await waiting;
    expect(Date.now()).toBe(at);

    const abort = new AbortController();
    const stopped = sleepUntil(400 * DAY, abort.signal);
    abort.abort();
    await stopped;
    expect(Date.now()).toBe(at);
  });
});
