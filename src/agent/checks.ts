/**
 * The agent's health checks (`nodectl check node NAME`), each named, with ok and what was found —
 * as the kubelet's /healthz?verbose and kube-apiserver's [+]/[-] lines:
 *
 * - registered: the node has been registered (or, with --register-node=false, found);
 * - lease: renewed within the lease duration (what the node lifecycle controller judges);
 * - status: sent within the report period plus two update periods (an unchanged status is sent
 *   only every report period);
 * - memory, disk, pid: no pressure against --eviction-hard (the conditions the agent reports);
 * - certificate(s): not expired (renewed automatically before they are).
 */
import type { Clock } from "../clock.js";
import type { CheckResult } from "../gen/nodeplane/v1/agent.js";
import type { NodeCondition } from "../gen/nodeplane/v1/node.js";
import type { AgentProgress } from "./agent.js";

export interface CheckSources {
  progress: AgentProgress;
  clock: Clock;
  leaseDurationMs: number;
  statusUpdateFrequencyMs: number;
  statusReportFrequencyMs: number;
  /** The machine's pressure conditions now (MemoryPressure, DiskPressure, PIDPressure). */
  conditions: () => readonly NodeCondition[];
  /** Certificates the agent holds, by check name ("certificate", "serving-certificate"). */
  certificates?: () => readonly { name: string; notAfter: Date }[];
}

const PRESSURES: readonly [string, string][] = [
  ["memory", "MemoryPressure"],
  ["disk", "DiskPressure"],
  ["pid", "PIDPressure"],
];

export function runChecks(s: CheckSources): CheckResult[] {
  const now = s.clock.now();
  const { registeredAt, renewedAt, statusSentAt } = s.progress;
  const age = (at: number): string => `${Math.max(0, Math.round((now - at) / 1000))}s ago`;
  const out: CheckResult[] = [
    registeredAt > 0 ? ok("registered", `registered ${age(registeredAt)}`) : failed("registered", "not registered yet"),
    renewedAt === 0
      ? failed("lease", "never renewed")
      : now - renewedAt <= s.leaseDurationMs
        ? ok("lease", `renewed ${age(renewedAt)}`)
        : failed("lease", `last renewed ${age(renewedAt)}, longer than the lease duration (${s.leaseDurationMs / 1000}s)`),
  ];
  const statusDue = s.statusReportFrequencyMs + 2 * s.statusUpdateFrequencyMs;
  out.push(
    statusSentAt === 0
      ? failed("status", "never sent")
      : now - statusSentAt <= statusDue
        ? ok("status", `sent ${age(statusSentAt)}`)
        : failed("status", `last sent ${age(statusSentAt)}, longer than the report period allows (${statusDue / 1000}s)`),
  );
  const conditions = s.conditions();
  for (const [name, type] of PRESSURES) {
    const c = conditions.find((x) => x.type === type);
    if (c) out.push(c.status === "False" ? ok(name, c.message) : failed(name, `${type} ${c.status}: ${c.message}`));
  }
  for (const cert of s.certificates?.() ?? []) {
    const until = cert.notAfter.toISOString();
    out.push(cert.notAfter.getTime() > now ? ok(cert.name, `valid until ${until}`) : failed(cert.name, `expired at ${until}`));
  }
  return out;
}

const ok = (name: string, message: string): CheckResult => ({ name, ok: true, message });
const failed = (name: string, message: string): CheckResult => ({ name, ok: false, message });
