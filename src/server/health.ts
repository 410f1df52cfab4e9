/**
 * grpc.health.v1.Health (Check, Watch, List) via grpc-health-check.
 *
 * grpc-health-check loads health.proto through proto-loader, which is fine for serving calls
 * but not for describing them: those descriptors are rejected by strict reflection clients
 * ("map_entry should not be set explicitly"). Reflection therefore describes this service from
 * buf's src/gen/health.binpb (see addReflection), never from this module.
 */
import type * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";

export const NODE_SERVICE_NAME = "nodeplane.v1.NodeService";

export interface HealthStatus {
  /** `service` "" is the server as a whole, as grpc health probes ask by default. */
  setServing(service: string, serving: boolean): void;
}

/**
 * Adds the health service to `server`. The listed services start NOT_SERVING, so a probe
 * during start-up gets an answer rather than NOT_FOUND; the caller flips them to SERVING once
 * it accepts work, and back to NOT_SERVING when it starts draining.
 */
export function addHealth(
  server: Pick<grpc.Server, "addService">,
  services: readonly string[] = ["", NODE_SERVICE_NAME],
): HealthStatus {
  const health = new HealthImplementation(
    Object.fromEntries(services.map((service) => [service, "NOT_SERVING" as const])),
  );
  health.addToServer(server);
  return {
    setServing(service: string, serving: boolean): void {
      health.setStatus(service, serving ? "SERVING" : "NOT_SERVING");
    },
  };
}
