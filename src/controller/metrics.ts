/** Metrics of the node lifecycle controller, on the server's Prometheus registry. */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export class ControllerMetrics {
  readonly nodesByReady: Gauge<"status">;
  readonly zonesByState: Gauge<"state">;
  readonly taintsAdded: Counter<"taint">;
  readonly taintsRemoved: Counter<"taint">;
  readonly passSeconds: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.nodesByReady = new Gauge({ name: "nodeplane_nodes", help: "Nodes by Ready condition status.", labelNames: ["status"], registers });
    this.zonesByState = new Gauge({ name: "nodeplane_zones", help: "Zones by disruption state.", labelNames: ["state"], registers });
    this.taintsAdded = new Counter({ name: "nodeplane_controller_taints_added_total", help: "Taints the controller added.", labelNames: ["taint"], registers });
    this.taintsRemoved = new Counter({ name: "nodeplane_controller_taints_removed_total", help: "Taints the controller removed.", labelNames: ["taint"], registers });
    this.passSeconds = new Histogram({
      name: "nodeplane_controller_monitor_pass_seconds",
      help: "Wall time of one health-monitoring pass over every node (it leaves the event loop to other work every 2,000 nodes).",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
  }
}
