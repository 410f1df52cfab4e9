/** --server, NODEPLANE_SERVER and a kubeconfig's server: one address or several replicas, with or without a scheme. */
import { describe, expect, it } from "vitest";
import { parseServerUrl } from "../../src/auth/kubeconfig.js";

describe("parseServerUrl", () => {
  it("takes host:port, http:// and https://, and several replicas separated by commas", () => {
    expect(parseServerUrl("127.0.0.1:50051", "--server")).toEqual({ server: "127.0.0.1:50051" });
    expect(parseServerUrl("https://a:1/", "--server")).toEqual({ server: "a:1", tls: true });
    expect(parseServerUrl("http://[::1]:2", "--server")).toEqual({ server: "[::1]:2", tls: false });
    expect(parseServerUrl("a:1, b:2,c:3", "--server")).toEqual({ server: "a:1,b:2,c:3" });
    expect(parseServerUrl("https://a:1,https://b:2", "--server")).toEqual({ server: "a:1,b:2", tls: true });
  });

  it("refuses a bad address by name, an empty one, a port over 65535 and mixed schemes", () => {
    expect(() => parseServerUrl("a:1,nope", "--server")).toThrow('--server: "nope" is not host:port (e.g. 127.0.0.1:50051)');
    expect(() => parseServerUrl("a:1,", "--server")).toThrow('--server: "" is not host:port');
    expect(() => parseServerUrl("a:65536", "--server")).toThrow('"a:65536" is not host:port');
    expect(() => parseServerUrl("https://a:1,b:2", "--server")).toThrow("mixes schemes");
  });
});
