// "Tidy at 1366×768 and wider": in Chromium against the stand-in backend, the page never scrolls
// sideways at 1366×768 or 1920×1080 in its main states: sign-in, backend unreachable, the
// signed-in page with running, finished and failed jobs (long names and messages included), a
// failed upload, a job's timeline with its deliveries.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { seedHistory } from "../dev/simulate.mjs";
import { ARTIFACTS, archiveBytes, signIn, skip, usePageHarness } from "./support/page-harness.js";

const { startBackend, openPage } = usePageHarness();

const VIEWPORTS = [
  { width: 1366, height: 768 },
  { width: 1920, height: 1080 },
];

/** Whether the document scrolls sideways, and which elements stick out past the viewport. */
function overflow(page) {
  return page.evaluate(() => {
    const root = document.documentElement;
    const offenders = [...document.querySelectorAll("body *")]
      .filter((el) => el.getClientRects().length && el.getBoundingClientRect().right > root.clientWidth + 0.5)
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}.${[...el.classList].join(".")} right=${Math.round(el.getBoundingClientRect().right)}`);
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, offenders };
  });
}

async function assertNoSidewaysScroll(page, state, viewport) {
  const result = await overflow(page);
  assert.ok(result.scrollWidth <= result.clientWidth, `${state} at ${viewport.width}×${viewport.height}: ${JSON.stringify(result)}`);
  assert.deepEqual(result.offenders, [], `${state} at ${viewport.width}×${viewport.height}`);
}

for (const viewport of VIEWPORTS) {
  test(`no horizontal scrolling at ${viewport.width}×${viewport.height} in the page's main states`, { skip }, async () => {
    const { backend, origin } = await startBackend({ replay: true, tusGate: uploadRefused });
    seedHistory(backend, { speed: 1 });
    // A running job with a long registry path, which fails (below) with a long unbroken token in its message.
    const long = backend.addJob({ host: "lab2", image: "registry.lab.example.org:5000/vendor/network-os/containerized-router-lab-edition:24.10.1-build.20250101" });
    const base = { job_id: long.id, host: "lab2", bytes_total: 600_000_000, rate_bps: 52_000_000, eta_s: 11, phase_elapsed_s: null, queue_position: null, image: null, error: null };
    backend.publish(long.id, "import.progress", { ...base, seq: 1, state: "running", phase: "importing", percent: 3, bytes_done: 18_000_000 });
    const { page, problems } = await openPage(origin, { viewport });
    try {
      await page.locator("#signin").waitFor();
      await assertNoSidewaysScroll(page, "sign-in", viewport);

      await signIn(page);
      await page.locator("#transport", { hasText: /^Live$/ }).waitFor();
      await page.locator('.job-card[data-state="running"]').nth(1).waitFor();
      await page.locator("#jobs tbody tr").nth(3).waitFor();
      await assertNoSidewaysScroll(page, "signed in, jobs running", viewport);
      backend.publish(long.id, "import.failed", {
        ...base, seq: 2, state: "failed", phase: "importing", percent: 3, bytes_done: 18_000_000, rate_bps: null, eta_s: null,
        error: { code: "source_not_found", message: `cannot read http://hub.example.org/api/uploads/${"0123456789abcdef".repeat(6)}?token=${"x".repeat(80)}`, detail: null },
      });
      await page.locator('.job-card[data-state="failed"]').waitFor();
      await assertNoSidewaysScroll(page, "a job failed with a long message", viewport);

      // An upload the server refuses: its error under the upload bar.
      await page.setInputFiles("#file", { name: `${"very-long-archive-name-".repeat(6)}.tar.xz`, mimeType: "application/x-xz", buffer: archiveBytes(64 * 1024, 1) });
      await page.getByText(/^Upload failed: /).waitFor();
      await assertNoSidewaysScroll(page, "upload failed", viewport);

      // The long job's details: summary, timeline and deliveries.
      await page.getByRole("button", { name: /^Details of registry\.lab\.example\.org/ }).first().click();
      await page.locator("#details tbody tr[data-source]").first().waitFor();
      await page.getByRole("button", { name: "Show deliveries" }).click();
      await page.locator(".deliveries tbody tr").first().waitFor();
      await assertNoSidewaysScroll(page, "details with deliveries", viewport);
      await page.screenshot({ path: join(ARTIFACTS, `page-layout-${viewport.width}.png`), fullPage: true });

      // The backend goes away: the reload waits for it, saying so.
      backend.gatewayDown = true;
      await page.reload();
      await page.locator("#transport", { hasText: "Backend unreachable · retrying" }).waitFor();
      await assertNoSidewaysScroll(page, "backend unreachable", viewport);
      assert.deepEqual(problems.filter((p) => !/^Failed to load resource: /.test(p)), []);
    } finally {
      await page.context().close();
      for (const { job } of backend.jobs.values()) job.cancelRequested = true; // ends the simulated import
      await backend.close();
    }
  });
}

/** Every upload is refused with a long message, as a proxy with a body limit would. */
function uploadRefused(req, res) {
  res.writeHead(413, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ error: { code: "too_large", message: `upload refused by ${"proxy-".repeat(20)}: larger than client_max_body_size` } }));
}
