/**
 * The control plane's client certificate, which the server presents when it dials a node's
 * agent (kube-apiserver's --kubelet-client-certificate): CN=system:nodeplane:control-plane,
 * O=nodeplane:control-plane, clientAuth, signed by the cluster signing CA — the CA agents have
 * (ca.crt beside their node certificate) and verify callers against. Agents answer no other
 * identity (src/agent/endpoint.ts).
 *
 * It is made in memory from the issuer, never written to disk, lives a day and is made again
 * once half of that has passed; every replica makes its own from the shared CA. The authorizer
 * gives its group nothing: presented to the server itself it may only ask who it is.
 */
import type { Clock } from "../clock.js";
import { GROUPS } from "./identity.js";
import { generateKeyPair, issueCertificate, type Issuer, privateKeyPem } from "./pki.js";

const CONTROL_PLANE_USER = "system:nodeplane:control-plane";
const LIFETIME_MS = 24 * 3_600_000;

/** What the server dials agents with: the CA their serving certificates must chain to, and its own client certificate. */
export interface AgentDialCredentials {
  /** The cluster signing CA (PEM). */
  ca: string;
  cert: string;
  key: string;
}

interface Made {
  credentials: AgentDialCredentials;
  renewAt: number;
}

export class ControlPlaneCredentials {
  private made: Made | undefined;
  private making: Promise<Made> | undefined;

  constructor(
    private readonly issuer: Issuer,
    private readonly clock: Clock,
  ) {}

  /** The credentials now (the same object until they are renewed, so callers can key caches on it). */
  async get(): Promise<AgentDialCredentials> {
    const now = this.clock.now();
    if (this.made && now < this.made.renewAt) return this.made.credentials;
    this.making ??= this.make(now)
      .then((made) => (this.made = made))
      .finally(() => (this.making = undefined));
    return (await this.making).credentials;
  }

  private async make(now: number): Promise<Made> {
    const keys = await generateKeyPair();
    const cert = await issueCertificate(this.issuer, {
      subject: { commonName: CONTROL_PLANE_USER, organizations: [GROUPS.controlPlane] },
      publicKey: keys.publicKey,
      usage: "client",
      // Backdated a little for agents whose clocks run behind ours.
      notBefore: new Date(now - 5 * 60_000),
      notAfter: new Date(now + LIFETIME_MS),
    });
    return { credentials: { ca: this.issuer.certPem, cert, key: privateKeyPem(keys.privateKey) }, renewAt: now + LIFETIME_MS / 2 };
  }
}
