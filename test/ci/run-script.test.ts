import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// .ci/run runs under `set -euo pipefail`. A version probe piped into a reader that exits early
// (`| head -1`) fails the whole run with 141 whenever the tool writes its next line after the
// reader has gone: etcd --version did, once in ~100 runs. These stand-ins write far more than a
// pipe holds after their first line, so an early-exiting reader fails every time, not by chance.
const script = readFileSync(".ci/run", "utf8");
const probes = script.split("\n").filter((line) => /^(etcd|chromium|kubectl) (--)?version\b/.test(line));
const bin = mkdtempSync(join(tmpdir(), "nodeplane-ci-probe-"));
afterAll(() => rmSync(bin, { recursive: true, force: true }));

function standIn(name: string, first: string): void {
  const path = join(bin, name);
  writeFileSync(path, `#!/usr/bin/env bash\necho "${first}"\nfor i in $(seq 1 20000); do echo "more output line $i"; done\n`);
  chmodSync(path, 0o755);
}

describe(".ci/run's version probes", () => {
  it("set pipefail and probe etcd, chromium and kubectl", () => {
    expect(script).toMatch(/^set -euo pipefail$/m);
    expect(probes.map((line) => line.split(" ")[0])).toEqual(["etcd", "chromium", "kubectl"]);
  });

  it("succeed and print each tool's first line however much the tool writes after it", () => {
    standIn("etcd", "etcd Version: 3.4.23");
    standIn("chromium", "Chromium 120.0");
    standIn("kubectl", "Client Version: v1.28.0");
    const bash = execFileSync("sh", ["-c", "command -v bash"], { encoding: "utf8" }).trim();
    const run = spawnSync(bash, ["--norc", "--noprofile", "-c", ["set -euo pipefail", ...probes].join("\n")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: `${bin}:/usr/bin:/bin` },
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.split("\n");
    expect(lines[0]).toBe("etcd Version: 3.4.23");
    expect(lines).toContain("Client Version: v1.28.0");
  });
});
