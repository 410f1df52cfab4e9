/**
 * Field names between the two views of one object: nodeplane's proto (snake_case field
 * paths in validation errors, camelCase in the generated types) and Kubernetes' JSON
 * (`podCIDRs`, `providerID`, `nodeInfo.kubeletVersion`, `daemonEndpoints.kubeletEndpoint.Port`).
 * Validation errors name proto paths; the REST view reports them under Kubernetes' names so
 * that `kubectl` users see the fields they wrote.
 */

/** Proto segment (snake_case) → Kubernetes JSON segment, where it is not plain lowerCamelCase. */
const RENAMED: Record<string, string> = {
  pod_cidr: "podCIDR",
  pod_cidrs: "podCIDRs",
  provider_id: "providerID",
  agent_version: "kubeletVersion",
  agent_endpoint: "kubeletEndpoint",
  port: "Port",
  machine_id: "machineID",
  system_uuid: "systemUUID",
  boot_id: "bootID",
  // Request fields of the gRPC API that the REST view receives as query parameters.
  label_selector: "labelSelector",
  field_selector: "fieldSelector",
  continue_token: "continue",
};

/** Whole paths that move (a request-level precondition is the object's metadata.resourceVersion). */
const MOVED: Record<string, string> = { resource_version: "metadata.resourceVersion" };

const camel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * `spec.pod_cidrs[1]` → `spec.podCIDRs[1]`; `status.node_info.agent_version` →
 * `status.nodeInfo.kubeletVersion`. Index and map-key suffixes (`[0]`, `["k"]`) are kept.
 */
export function kubeFieldPath(protoPath: string): string {
  if (Object.hasOwn(MOVED, protoPath)) return MOVED[protoPath]!;
  return protoPath
    .split(".")
    .map((segment) => {
      const m = /^([a-z0-9_]+)(.*)$/s.exec(segment);
      if (!m) return segment;
      const [, head = "", rest = ""] = m;
      return (Object.hasOwn(RENAMED, head) ? RENAMED[head]! : camel(head)) + rest;
    })
    .join(".")
    .replace(/^node\./, "");
}
