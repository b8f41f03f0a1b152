// A payload that breaks the callback contract, in Chromium against the stand-in backend: it is
// never counted, and never silently dropped either: the job's card says so and the timeline
// lists it as invalid.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { ARTIFACTS, archiveBytes, signIn, skip, usePageHarness } from "./support/page-harness.js";

const { startBackend, openPage } = usePageHarness();

test("a payload that breaks the contract is not counted, is shown on the card and listed in the timeline as invalid", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  const { page, problems } = await openPage(origin);
  try {
    await signIn(page);
    await page.setInputFiles("#file", { name: "ceos-lab-4.35.1F.tar.xz", mimeType: "application/x-xz", buffer: archiveBytes(256 * 1024, 1) });
    await page.getByText(/^Uploaded 256 KiB/).waitFor();
    await page.getByLabel("lab1", { exact: true }).check();
    await page.getByLabel("Image", { exact: true }).fill("ceos:bad");
    await page.getByRole("button", { name: "Import", exact: true }).click();
    const card = page.locator(".job-card", { has: page.getByText("ceos:bad on lab1", { exact: true }) });
    await card.waitFor();
    await page.locator("#transport", { hasText: /^Live$/ }).waitFor();
    const id = await card.getAttribute("data-job");

    // An importer (or a backend) speaking another version of the contract: percent over 100.
    const base = { job_id: id, host: "lab1", seq: 1, state: "running", phase: "importing", bytes_done: 1024, bytes_total: 4096, rate_bps: null, eta_s: null, phase_elapsed_s: null, queue_position: null, image: null, error: null };
    backend.io.to(`job:${id}`).to("jobs").emit("import.progress", { ...base, percent: 250 }, { replay: false, catchup: false, timestamp: new Date().toISOString() });
    const note = card.locator(".invalid-note");
    await note.waitFor();
    assert.match(await note.textContent(), /^1 update not counted: it broke the callback contract \(import\.progress: \/data\/percent must be <= 100\)/);
    assert.equal(await card.getByRole("progressbar").getAttribute("aria-valuenow"), "0", "not counted");
    assert.equal(await card.getAttribute("data-state"), "queued");

    // Its seq was not taken: the valid event with the same seq counts.
    backend.publish(id, "import.progress", { ...base, percent: 25 });
    await page.waitForFunction((el) => el.querySelector('[role="progressbar"]').getAttribute("aria-valuenow") === "25", await card.elementHandle());

    await card.getByRole("button", { name: "Details of ceos:bad on lab1" }).click();
    const rows = page.locator("#details tbody tr");
    await rows.filter({ hasText: "invalid" }).waitFor();
    const table = await rows.evaluateAll((trs) => trs.map((tr) => [tr.dataset.source, ...[...tr.cells].map((td) => td.textContent)]));
    const invalid = table.filter((row) => row[0] === "invalid");
    assert.equal(invalid.length, 1, `listed once although both the job's watch and the jobs feed saw it: ${JSON.stringify(table)}`);
    assert.equal(invalid[0][1], "1");
    assert.equal(invalid[0][2], "progress");
    assert.equal(invalid[0][4], "", "no delay for what was not counted");
    assert.equal(invalid[0][5], "invalid");
    assert.match(invalid[0][6], /^Not counted, breaks the callback contract: import\.progress: \/data\/percent must be <= 100$/);
    assert.ok(table.some((row) => row[0] === "live" && row[1] === "1" && /25\.0 %/.test(row[6])), JSON.stringify(table));
    await page.screenshot({ path: join(ARTIFACTS, "page-invalid-payload.png"), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});
