/**
 * The page's files (HTML, scripts, styles) ship in the package as they are, in
 * src/dashboard/assets/, and are read from there at start: the same directory whether the
 * server runs from dist/ (npm start) or from the sources (the tests). No bundler, no CDN; the
 * scripts are plain ES modules, type-checked by their own tsconfig (assets/tsconfig.json).
 *
 * Only files present at start are served, by exact name; nothing from the request reaches the
 * file system.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** The package root: the nearest directory up from this module holding package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`dashboard assets: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

/** Every servable file of the assets directory, by file name. */
export function loadAssets(dir = join(packageRoot(), "src", "dashboard", "assets")): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` });
  }
  if (!assets.has("index.html")) throw new Error(`dashboard assets: ${dir} has no index.html`);
  return assets;
}
