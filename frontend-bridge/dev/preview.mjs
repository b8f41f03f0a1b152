// `npm run preview`: the built page (dist/) served by the stand-in backend, with simulated lab
// hosts whose imports progress through every phase. For working on the page without Docker.
//
//   node dev/preview.mjs [--port 8090] [--block-websocket] [--fail-host lab2] [--no-replay]
//   tokens: operator-token (operator), viewer-token (viewer)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { FileStore } from "@tus/file-store";
import { Server as TusServer } from "@tus/server";

import { createStandInBackend } from "./stand-in-backend.mjs";
import { simulateImport, seedHistory } from "./simulate.mjs";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "8090" },
    "block-websocket": { type: "boolean", default: false },
    "fail-host": { type: "string", default: "" },
    "no-replay": { type: "boolean", default: false },
    "no-seed": { type: "boolean", default: false },
    speed: { type: "string", default: "1" },
  },
});

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const uploads = mkdtempSync(join(tmpdir(), "ferry-preview-"));
const tus = new TusServer({ path: "/api/uploads", datastore: new FileStore({ directory: uploads }) });
const speed = Number(args.speed) || 1;

const backend = createStandInBackend({
  port: Number(args.port),
  staticDir: join(root, "dist"),
  tokens: { "operator-token": "operator", "viewer-token": "viewer", "admin-token": "admin" },
  tus,
  replay: !args["no-replay"],
  onStartImport(b, body, jobs) {
    for (const job of jobs) simulateImport(b, job, { fail: job.host === args["fail-host"], speed });
  },
  onCancel(b, job) {
    job.cancelRequested = true;
  },
});
backend.blockWebsocket = args["block-websocket"];
const now = Date.now();
backend.hosts = [
  { name: "lab1", url: "http://lab1:8081", alive: true, last_seen: new Date(now - 4000).toISOString(), disk_free_bytes: 412 * 1024 ** 3, engine_version: "27.3.1", running: [], queued: [] },
  { name: "lab2", url: "http://lab2:8081", alive: true, last_seen: new Date(now - 9000).toISOString(), disk_free_bytes: 96 * 1024 ** 3, engine_version: "26.1.4", running: [], queued: [] },
  { name: "lab3", url: "http://lab3:8081", alive: false, last_seen: new Date(now - 3600_000).toISOString(), disk_free_bytes: null, engine_version: null, running: [], queued: [] },
];
backend.images = [
  { host: "lab1", reachable: true, images: [] },
  { host: "lab2", reachable: true, images: [] },
  { host: "lab3", reachable: false, images: [] },
];
if (!args["no-seed"]) seedHistory(backend, { speed });

const origin = await backend.listen();
console.log(`ferry preview on ${origin}  (tokens: operator-token, viewer-token)${backend.blockWebsocket ? "  [websocket blocked]" : ""}`);

const stop = async () => {
  await backend.close();
  rmSync(uploads, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
