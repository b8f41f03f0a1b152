// The built page (dist/) in Debian's Chromium against the stand-in backend with simulated lab
// hosts: shared by the page suites. Each suite launches one browser; each test gets its own
// backend and page.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

import { FileStore } from "@tus/file-store";
import { Server as TusServer } from "@tus/server";
import { chromium } from "playwright-core";

import { createStandInBackend } from "../../dev/stand-in-backend.mjs";
import { simulateImport } from "../../dev/simulate.mjs";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const DIST = join(ROOT, "dist");
export const ARTIFACTS = join(ROOT, "test-artifacts");
export const skip = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}` : !existsSync(join(DIST, "app.js")) ? "dist/ is not built (npm run build)" : false;

/** Call once at a suite's top level: one Chromium and one upload directory for the suite. */
export function usePageHarness() {
  const harness = { browser: null, uploads: null };
  before(async () => {
    if (skip) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    harness.uploads = mkdtempSync(join(tmpdir(), "ferry-page-test-"));
    harness.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    });
  });
  after(async () => {
    await harness.browser?.close();
    if (harness.uploads) rmSync(harness.uploads, { recursive: true, force: true });
  });

  /**
   * A stand-in backend serving dist/, with tus uploads and lab1, lab2. `tusGate(req, res, tus)`
   * may take an upload request instead of the tus server (to break one on purpose).
   */
  harness.startBackend = async ({ blockWebsocket = false, failHost = "", presentHost = "", speed = 10, simulate = true, replay = false, tusGate = null, layers = 0 } = {}) => {
    const tus = new TusServer({ path: "/api/uploads", datastore: new FileStore({ directory: harness.uploads }) });
    const tokens = { "operator-token": "operator", "viewer-token": "viewer" };
    const backend = createStandInBackend({
      staticDir: DIST,
      tokens,
      replay,
      tus: { handle: (req, res) => (tusGate ? tusGate(req, res, tus) : tus.handle(req, res)) },
      onCancel(b, job) {
        job.cancelRequested = true; // the simulated host stops at its next step
        b.cancels = (b.cancels ?? 0) + 1;
      },
      onStartImport(b, body, jobs) {
        if (!simulate) return;
        for (const job of jobs) simulateImport(b, job, { fail: job.host === failHost, present: job.host === presentHost, speed, total: 600 * 1024 * 1024, finalizeS: 8, layers });
      },
    });
    backend.tokens = tokens;
    backend.blockWebsocket = blockWebsocket;
    backend.hosts = ["lab1", "lab2"].map((name) => labHost(name));
    backend.images = [{ host: "lab1", reachable: true, images: [] }, { host: "lab2", reachable: true, images: [] }];
    return { backend, origin: await backend.listen() };
  };

  /** A page at 1366×768 (or `viewport`) in a fresh context (close with page.context().close()), recording console errors. */
  harness.openPage = async (origin, { viewport = { width: 1366, height: 768 }, beforeGoto } = {}) => {
    const context = await harness.browser.newContext({ viewport });
    const page = await context.newPage();
    const problems = [];
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await beforeGoto?.(page);
    await page.goto(origin);
    return { page, problems };
  };

  return harness;
}

export function labHost(name, { alive = true } = {}) {
  return { name, url: `http://${name}`, alive, last_seen: new Date().toISOString(), disk_free_bytes: 1e11, engine_version: "27.3.1", running: [], queued: [] };
}

/** Sign in from the keyboard, as a person would, and wait for the page. */
export async function signIn(page, token = "operator-token") {
  await page.locator("#token").waitFor();
  await page.keyboard.type(token);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "New import" }).waitFor();
}

/** Chromium's own lines for a refused websocket or a failed request; the page's code logs nothing. */
export const BROWSER_NETWORK_NOISE = /^(WebSocket connection to .* failed|Failed to load resource: )/;

/** `size` bytes of `fill` that start like an xz archive, so the page's first-bytes check lets them upload. */
export function archiveBytes(size, fill = 0) {
  const buffer = Buffer.alloc(size, fill);
  Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]).copy(buffer);
  return buffer;
}
