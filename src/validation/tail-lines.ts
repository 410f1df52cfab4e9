/**
 * How many of an agent's recent log lines one call may ask for (GetLogs, GetNodeLogs): the
 * agent keeps MAX_TAIL_LINES, and the server checks a request before it reaches any agent.
 */
import { InvalidError } from "../errors.js";

/** The most lines one call may ask for (and what the agent keeps). */
export const MAX_TAIL_LINES = 1000;

/** @throws InvalidError naming tail_lines unless it is a whole number from 0 (all) to MAX_TAIL_LINES. */
export function checkTailLines(tailLines: number): void {
  if (!Number.isInteger(tailLines) || tailLines < 0 || tailLines > MAX_TAIL_LINES) {
    throw InvalidError.of("tail_lines", String(tailLines), `must be a whole number from 1 to ${MAX_TAIL_LINES} (0 = every line the agent keeps, at most ${MAX_TAIL_LINES})`);
  }
}
