/**
 * Abuse limits per identity, so that one client's flood cannot starve the others:
 * - a request rate: a token bucket per user (`qps` refilled per second, up to `burst`);
 *   a call over it is refused at once with RESOURCE_EXHAUSTED (cheap: nothing is read or decoded
 *   beyond the request itself), naming the limit;
 * - open streams (Watch and Heartbeat) per user;
 * - the size of a request from a node or a bootstrap token: what they send is small (a Node is a
 *   few KB), so they get a smaller limit than operators' --max-message-size.
 * Buckets of users who have gone quiet are dropped by `sweep()`.
 */
import type { Clock } from "../clock.js";
import { ResourceExhaustedError } from "../errors.js";
import { GROUPS, type Identity } from "./identity.js";

export interface LimitOptions {
  /** Requests per second per identity (0 = no rate limit). */
  qps: number;
  /** Requests an idle identity may send at once. */
  burst: number;
  /** Open Watch and Heartbeat streams per identity (0 = no limit). */
  maxStreams: number;
  /** Largest request a node or a bootstrap token may send, in bytes (0 = no limit beyond the server's). */
  maxNodeRequestBytes: number;
  clock: Clock;
}

export const DEFAULT_LIMITS = { qps: 100, burst: 200, maxStreams: 100, maxNodeRequestBytes: 1024 * 1024 } as const;

interface Bucket {
  tokens: number;
  at: number;
  streams: number;
}

export class IdentityLimits {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly o: LimitOptions) {}

  /** Count one request against the identity's rate. @throws ResourceExhaustedError */
  take(identity: Identity): void {
    if (this.o.qps <= 0) return;
    const b = this.bucket(identity.user);
    if (b.tokens < 1) {
      throw new ResourceExhaustedError(
        `rate limit for user ${JSON.stringify(identity.user)}: ${this.o.qps} requests/s with bursts of ${this.o.burst} (--max-requests-per-second-per-identity, --max-request-burst-per-identity); slow down and retry`,
      );
    }
    b.tokens -= 1;
  }

  /** Count an open stream; answers its release (idempotent). @throws ResourceExhaustedError */
  openStream(identity: Identity): () => void {
    const b = this.bucket(identity.user);
    if (this.o.maxStreams > 0 && b.streams >= this.o.maxStreams) {
      throw new ResourceExhaustedError(
        `too many open streams for user ${JSON.stringify(identity.user)}: limit ${this.o.maxStreams} Watch and Heartbeat streams per identity (--max-streams-per-identity)`,
      );
    }
    b.streams++;
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      b.streams--;
    };
  }

  /** Refuse a request too large for the identity. @throws ResourceExhaustedError */
  checkSize(identity: Identity, bytes: number): void {
    const limit = this.o.maxNodeRequestBytes;
    if (limit <= 0 || bytes <= limit) return;
    const small = identity.nodeName !== undefined || identity.groups.includes(GROUPS.bootstrappers);
    if (!small) return;
    throw new ResourceExhaustedError(
      `request of ${bytes} bytes from user ${JSON.stringify(identity.user)} is over the ${limit}-byte limit for nodes and bootstrap tokens (--max-node-request-size)`,
    );
  }

  /** Drop the buckets of identities that are full again and hold no stream. */
  sweep(): void {
    for (const [user, b] of this.buckets) {
      this.refill(b);
      if (b.streams === 0 && b.tokens >= this.o.burst) this.buckets.delete(user);
    }
  }

  private bucket(user: string): Bucket {
    let b = this.buckets.get(user);
    if (!b) {
      b = { tokens: this.o.burst, at: this.o.clock.now(), streams: 0 };
      this.buckets.set(user, b);
    } else {
      this.refill(b);
    }
    return b;
  }

  private refill(b: Bucket): void {
    const now = this.o.clock.now();
    b.tokens = Math.min(this.o.burst, b.tokens + ((now - b.at) / 1000) * this.o.qps);
    b.at = now;
  }
}
