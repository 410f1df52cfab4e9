/**
 * DNS-1123 subdomain names (Kubernetes' IsDNS1123Subdomain): what a Node's name must be, and
 * the prefix of a label key. Valid exactly when Kubernetes' regex
 * `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*` matches and the name has
 * at most 253 characters; each broken rule gets its own message so that a request learns
 * everything that is wrong with a name at once.
 */

const MAX_LENGTH = 253;

/** Kubernetes' regex: one test answers for the common, valid name (the rules below explain the rest). */
const SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

const isAlphanumeric = (c: string | undefined): boolean => c !== undefined && /^[A-Za-z0-9]$/.test(c);

/** The rules `value` breaks as a DNS-1123 subdomain; empty when it is one. */
export function dns1123SubdomainViolations(value: string): string[] {
  if (value.length <= MAX_LENGTH && SUBDOMAIN.test(value)) return [];
  if (value.length === 0) return ["must not be empty"];
  const rules: string[] = [];
  if (value.length > MAX_LENGTH) rules.push(`must be no more than ${MAX_LENGTH} characters`);
  if (!/^[a-z0-9.-]*$/.test(value)) {
    rules.push("must consist of lower case alphanumeric characters, '-' or '.'");
  }
  // Upper-case letters are reported by the rule above only, not again as a bad first or last character.
  if (!isAlphanumeric(value[0])) rules.push("must start with an alphanumeric character");
  if (!isAlphanumeric(value[value.length - 1])) rules.push("must end with an alphanumeric character");
  // Inner dots: every '.'-separated part must be non-empty and start and end alphanumerically
  // (the first part's start and the last part's end are the rules above).
  for (let i = 1; i < value.length - 1; i++) {
    if (value[i] === "." && (!isAlphanumeric(value[i - 1]) || !isAlphanumeric(value[i + 1]))) {
      rules.push(
        "each '.'-separated part must be non-empty and start and end with an alphanumeric character",
      );
      break;
    }
  }
  return rules;
}
