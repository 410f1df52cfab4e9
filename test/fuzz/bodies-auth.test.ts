/**
 * The bodies fuzz (bodies.test.ts) with authentication on: the real `nodeplane serve --tls`
 * with a token file, fuzzed as an operator, as a node and anonymous (identities.ts says who
 * each is and what is asserted besides the suite's own assertions: stays up, every call a
 * status, never INTERNAL/UNKNOWN, no rejected request changes the store).
 *
 * The RPCs are AUTH_FUZZ_RPCS: bodies.test.ts's, with reads also about another existing node,
 * and AuthService's (bootstrap tokens, WhoAmI; not SignNodeCertificate).
 *
 * Cost: a fifth of bodies.test.ts's count per RPC (400 by default; NODEPLANE_FUZZ_ITERATIONS
 * scales it the same way) for each of the three identities, plus up to 40 replayed pairs per
 * batch for the node: about 27,000 calls, some 50 s on a loaded 2-core machine.
 */
import { afterAll } from "vitest";
import { settingsFromEnv } from "./campaign.js";
import { describeBodyFuzz } from "./body-suite.js";
import { authIdentities } from "./identities.js";
import { AUTH_FUZZ_RPCS } from "./rpcs.js";

/** Of the count per RPC bodies.test.ts sends (2,000 by default). */
const SHARE = 1 / 5;

const base = settingsFromEnv();
const settings = { ...base, iterations: Math.max(1, Math.round(base.iterations * SHARE)) };
const ids = await authIdentities();
afterAll(() => ids.close());

for (const { who, oracle } of [ids.operator, ids.node, ids.anonymous]) describeBodyFuzz("test/fuzz/bodies-auth.test.ts", who, AUTH_FUZZ_RPCS, settings, oracle);
