/** A fixed machine for SDK NodeAgents in tests: what probeMachine would read on a small Linux node. */
import type { MachineStatus } from "../../src/agent/machine.js";

export function fixedMachine(name: string): MachineStatus {
  return {
    capacity: { cpu: "4", memory: "16Gi", pods: "110" },
    allocatable: { cpu: "3800m", memory: "15Gi", pods: "110" },
    addresses: [
      { type: "InternalIP", address: "10.0.0.7" },
      { type: "Hostname", address: name },
    ],
    nodeInfo: {
      machineId: "",
      systemUuid: "",
      bootId: "",
      kernelVersion: "6.1.0",
      osImage: "Debian GNU/Linux 12",
      containerRuntimeVersion: "",
      operatingSystem: "linux",
      architecture: "amd64",
      agentVersion: "nodeplane-agent/test",
    },
    conditions: [{ type: "Ready", status: "True", reason: "AgentReady", message: "agent is posting ready status", lastHeartbeatTime: undefined, lastTransitionTime: undefined }],
  };
}
