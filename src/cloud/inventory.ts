/**
 * The built-in provider: a static inventory file (YAML or JSON) listing the instances that
 * exist, re-read whenever its content changes. A file that no longer parses keeps the last good
 * inventory (a typo must not look like every machine vanishing).
 *
 *   instances:
 *     - providerID: inventory://rack1/m1
 *       region: eu-west
 *       zone: eu-west-1a
 *       shutdown: false
 *       addresses: [{ type: InternalIP, address: 10.0.0.11 }]
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import type { NodeAddress } from "../gen/nodeplane/v1/node.js";
import { addressViolations } from "../validation/node.js";
import type { CloudProvider, InstanceMetadata } from "./provider.js";

interface Instance extends InstanceMetadata {
  shutdown: boolean;
}

class InventoryError extends Error {}

export class InventoryProvider implements CloudProvider {
  readonly name = "inventory";
  private instances = new Map<string, Instance>();
  private lastText: string | undefined;

  private constructor(
    readonly file: string,
    private readonly onReloadError: (err: Error) => void,
  ) {}

  /** Load the file (an unreadable or invalid file is an error at start-up). */
  static async open(file: string, onReloadError: (err: Error) => void = () => {}): Promise<InventoryProvider> {
    const p = new InventoryProvider(file, onReloadError);
    const text = await readFile(file, "utf8").catch((err: unknown) => {
      throw new InventoryError(`--cloud-config ${file}: ${err instanceof Error ? err.message : String(err)}`);
    });
    p.instances = parseInventory(text, file);
    p.lastText = text;
    return p;
  }

  async refresh(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      this.onReloadError(new InventoryError(`--cloud-config ${this.file}: ${err instanceof Error ? err.message : String(err)}; keeping the last inventory`));
      return;
    }
    if (text === this.lastText) return;
    try {
      this.instances = parseInventory(text, this.file);
      this.lastText = text;
    } catch (err) {
      this.lastText = text;
      this.onReloadError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async instanceExists(providerId: string): Promise<boolean> {
    return this.instances.has(providerId);
  }

  async instanceShutdown(providerId: string): Promise<boolean> {
    return this.instances.get(providerId)?.shutdown ?? false;
  }

  async instanceMetadata(providerId: string): Promise<InstanceMetadata | undefined> {
    const i = this.instances.get(providerId);
    return i && { addresses: i.addresses, region: i.region, zone: i.zone };
  }
}

function parseInventory(text: string, file: string): Map<string, Instance> {
  const fail = (msg: string): never => {
    throw new InventoryError(`--cloud-config ${file}: ${msg}; keeping the last inventory`);
  };
  let doc: unknown;
  try {
    doc = parseYaml(text); // JSON is YAML too
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  const list = Array.isArray(doc) ? doc : (doc as { instances?: unknown } | null)?.instances;
  if (!Array.isArray(list)) fail('expected a list of instances, or a mapping with an "instances" list');
  const out = new Map<string, Instance>();
  (list as unknown[]).forEach((raw, i) => {
    const at = `instances[${i}]`;
    if (typeof raw !== "object" || raw === null) fail(`${at}: expected a mapping`);
    const r = raw as Record<string, unknown>;
    const providerId = r.providerID ?? r.providerId ?? r.provider_id;
    if (typeof providerId !== "string" || providerId === "") fail(`${at}: providerID is required`);
    const str = (key: string): string => {
      const v = r[key] ?? "";
      if (typeof v !== "string") fail(`${at}.${key}: expected a string`);
      return v as string;
    };
    const shutdown = r.shutdown ?? false;
    if (typeof shutdown !== "boolean") fail(`${at}.shutdown: expected true or false`);
    const rawAddresses = r.addresses ?? [];
    if (!Array.isArray(rawAddresses)) fail(`${at}.addresses: expected a list`);
    const addresses: NodeAddress[] = (rawAddresses as unknown[]).map((a, j) => {
      const addr = a as Record<string, unknown> | null;
      const address: NodeAddress = { type: String(addr?.type ?? ""), address: String(addr?.address ?? "") };
      const problems = addressViolations(address, `${at}.addresses[${j}]`);
      if (problems.length > 0) fail(problems.map((p) => `${p.field}: ${p.rule}`).join("; "));
      return address;
    });
    if (out.has(providerId as string)) fail(`${at}: providerID ${JSON.stringify(providerId)} is listed twice`);
    out.set(providerId as string, { addresses, region: str("region"), zone: str("zone"), shutdown: shutdown as boolean });
  });
  return out;
}
