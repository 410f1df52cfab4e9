/**
 * Fuzz below the gRPC client: malformed HTTP/2 + gRPC framing sent with node:http2 directly to
 * the real `nodeplane serve` — lying length prefixes, the compressed flag without (or with a
 * bogus) grpc-encoding, wrong content-types, no `te: trailers`, truncated frames, oversize
 * declared lengths, streams reset mid-message, and many streams at once — plus seeded random
 * framings of good messages. Each case runs against a unary read, a unary write, the Watch and
 * Heartbeat streams, health and reflection.
 *
 * Asserted: every stream the client finishes is answered (a gRPC status, an HTTP error or a
 * reset from the server) within CALL_TIMEOUT_MS; never UNKNOWN; never INTERNAL except where
 * grpc-js itself answers before any of our code runs (noted per case); the server is up and
 * answering after every case; and the store moved only by writes the answers account for.
 *
 * This file runs anonymous with authentication off; wire-auth.test.ts runs the same over TLS
 * as an operator, a node and anonymous with authentication on.
 *
 * Seeded like bodies.test.ts (NODEPLANE_FUZZ_SEED); NODEPLANE_FUZZ_ITERATIONS scales the random
 * framings (a tenth of it per RPC).
 */
import { settingsFromEnv } from "./campaign.js";
import { ANONYMOUS } from "./target.js";
import { describeWireFuzz } from "./wire-suite.js";

describeWireFuzz(ANONYMOUS, settingsFromEnv());
