// Build the page into dist/: index.html, app.js (the page and the client, bundled) and app.css.
// The backend serves this folder at `/`. Run `npm run build` (make setup does it).
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const dev = process.argv.includes("--dev");

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: { app: join(root, "web", "main.js") },
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["chrome110", "firefox115", "safari16"],
  minify: !dev,
  sourcemap: true,
  outdir: dist,
  legalComments: "linked",
  logLevel: "warning",
});
await build({
  entryPoints: { app: join(root, "web", "styles.css") },
  bundle: true,
  minify: !dev,
  outdir: dist,
  logLevel: "warning",
});
copyFileSync(join(root, "web", "index.html"), join(dist, "index.html"));
console.log(`built ${dist}`);
