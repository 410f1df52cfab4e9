/**
 * The wire fuzz (wire.test.ts) with authentication on: the same malformed framing, over TLS
 * (node:http2 with the identity's CA, client certificate and `authorization` header), as an
 * operator, a node and anonymous (identities.ts says who each is and what is asserted besides).
 *
 * Cost: the fixed cases and the many-streams tests as in wire.test.ts, the random framings at a
 * fifth of its count, for each of the three identities.
 */
import { afterAll } from "vitest";
import { settingsFromEnv } from "./campaign.js";
import { authIdentities } from "./identities.js";
import { describeWireFuzz } from "./wire-suite.js";

/** Of the count wire.test.ts sizes its random framings by. */
const SHARE = 1 / 5;

const base = settingsFromEnv();
const settings = { ...base, iterations: Math.max(1, Math.round(base.iterations * SHARE)) };
const ids = await authIdentities();
afterAll(() => ids.close());

for (const { who, wireCheck } of [ids.operator, ids.node, ids.anonymous]) describeWireFuzz(who, settings, wireCheck);
