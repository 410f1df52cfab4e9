/**
 * The cloud provider interface: what the control plane asks about the machine behind a node
 * (Kubernetes' cloudprovider.InstancesV2, reduced). Identified by the node's spec.provider_id.
 */
import type { NodeAddress } from "../gen/nodeplane/v1/node.js";

export interface InstanceMetadata {
  addresses: NodeAddress[];
  region: string;
  zone: string;
}

export interface CloudProvider {
  /** A short name for logs and events ("inventory"). */
  readonly name: string;
  /** Pick up configuration changes (called before every sync pass). */
  refresh(): Promise<void>;
  /** Does the instance still exist? */
  instanceExists(providerId: string): Promise<boolean>;
  /** Is the instance shut down (it exists but is powered off)? */
  instanceShutdown(providerId: string): Promise<boolean>;
  /** Its addresses and zone, or undefined if the provider does not know it. */
  instanceMetadata(providerId: string): Promise<InstanceMetadata | undefined>;
}
