/**
 * Fuzz: every RPC the server serves (NodeService, health, reflection) gets random bytes and
 * schema-mutated bodies — valid requests built from the generated types, then mutated at the
 * wire level (hostile strings, invalid UTF-8, edge numbers, wrong wire types, duplicated,
 * unknown and illegal fields, lying lengths, truncation) — sent raw through a grpc-js client
 * with identity serializers to the real `nodeplane serve` in its own process.
 *
 * Asserted (see campaign.ts): the server stays up and answering, every call ends with a
 * status and never INTERNAL/UNKNOWN, and no rejected request changes the store.
 *
 * This file runs anonymous with authentication off (the embedded default); bodies-auth.test.ts
 * runs the same as an operator, a node and anonymous with authentication on.
 *
 * Runs with a fixed seed and DEFAULT_ITERATIONS (2,000) bodies per RPC in `npm test`: with the
 * wire-level file, about 70 s of CPU (server and client), so about 40 s on an idle 2-core
 * machine and two minutes or more when the machine is loaded. Environment:
 *   NODEPLANE_FUZZ_SEED=<n>         another seed (failure messages print the one used)
 *   NODEPLANE_FUZZ_ITERATIONS=<n>   bodies per RPC, e.g. 50000 for a long run
 *   NODEPLANE_FUZZ_BODY=<i>         only body #i of each selected test (replay one failure;
 *                                   pick the test with -t "Register: schema-mutated bodies")
 * A long run: NODEPLANE_FUZZ_ITERATIONS=50000 npx vitest run test/fuzz/ (test timeouts scale
 * with the count; needs dist/: `npx tsc -p tsconfig.build.json`, which `npm test` does first).
 */
import { settingsFromEnv } from "./campaign.js";
import { describeBodyFuzz } from "./body-suite.js";
import { FUZZ_RPCS } from "./rpcs.js";
import { ANONYMOUS } from "./target.js";

describeBodyFuzz("test/fuzz/bodies.test.ts", ANONYMOUS, FUZZ_RPCS, settingsFromEnv());
