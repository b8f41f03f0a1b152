// What a first-time user meets on the page: the only host is ticked for them, "No jobs yet" stands
// without a table header, Cancel asks before it cancels, and Esc closes Details.
import assert from "node:assert/strict";
import { test } from "node:test";

import { archiveBytes, labHost, signIn, skip, usePageHarness } from "./support/page-harness.js";

const { startBackend, openPage } = usePageHarness();

test("the only host is ticked, and no table header stands under No jobs yet", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  backend.hosts = [labHost("lab1")];
  const { page, problems } = await openPage(origin);
  try {
    await signIn(page);
    const lab1 = page.getByLabel("lab1", { exact: true });
    await lab1.waitFor();
    assert.equal(await lab1.isChecked(), true, "one host: nothing to choose");
    assert.doesNotMatch(await page.locator("#import-hint").textContent(), /choose at least one host/);
    await lab1.uncheck(); // the user's word stands
    await page.waitForTimeout(200);
    assert.equal(await lab1.isChecked(), false);
    assert.match(await page.locator("#import-hint").textContent(), /choose at least one host/);

    await page.getByText("No jobs yet.").waitFor();
    assert.equal(await page.locator("#jobs table").isVisible(), false, "no header over an empty list");
    assert.equal(await page.locator("#jobs th").first().isVisible(), false);
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("with two hosts neither is ticked for the user", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  const { page } = await openPage(origin);
  try {
    await signIn(page);
    await page.getByLabel("lab2", { exact: true }).waitFor();
    assert.equal(await page.getByLabel("lab1", { exact: true }).isChecked(), false);
    assert.equal(await page.getByLabel("lab2", { exact: true }).isChecked(), false);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("Cancel asks first: Keep importing leaves the job running, Yes, cancel cancels it", { skip }, async () => {
  const { backend, origin } = await startBackend({ speed: 0.5 });
  const { page, problems } = await openPage(origin);
  try {
    await signIn(page);
    await page.setInputFiles("#file", { name: "ceos-lab-4.35.1F.tar.xz", mimeType: "application/x-xz", buffer: archiveBytes(1024 * 1024, 3) });
    await page.getByText(/^Uploaded 1.00 MiB/).waitFor();
    await page.getByLabel("lab1", { exact: true }).check();
    await page.getByRole("button", { name: "Import", exact: true }).click();
    const card = page.locator(".job-card", { has: page.getByText("ceos-lab:4.35.1F on lab1", { exact: true }) });
    await card.waitFor();

    await card.getByRole("button", { name: "Cancel ceos-lab:4.35.1F on lab1" }).click();
    await card.getByText("Cancel this import? What the host loaded so far is removed.").waitFor();
    const keep = card.getByRole("button", { name: "Keep importing ceos-lab:4.35.1F on lab1" });
    assert.equal(await keep.evaluate((el) => el === document.activeElement), true, "the safe answer has the focus");
    await keep.click();
    await page.waitForTimeout(300);
    assert.equal(backend.cancels ?? 0, 0, "nothing was canceled");
    assert.notEqual(await card.getAttribute("data-state"), "canceled");
    assert.equal(await card.getByRole("button", { name: "Cancel ceos-lab:4.35.1F on lab1" }).isVisible(), true);

    await card.getByRole("button", { name: "Cancel ceos-lab:4.35.1F on lab1" }).click();
    await card.getByRole("button", { name: "Yes, cancel ceos-lab:4.35.1F on lab1" }).click();
    await page.waitForFunction((el) => el.dataset.state === "canceled", await card.elementHandle(), { timeout: 15000 });
    assert.equal(backend.cancels, 1);
    assert.equal(await card.locator(".confirm").isVisible(), false);
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("Esc closes Details", { skip }, async () => {
  const { backend, origin } = await startBackend({ speed: 4 });
  const { page, problems } = await openPage(origin);
  try {
    await signIn(page);
    const job = backend.addJob({ host: "lab2", image: "ceos:esc" });
    backend.publish(job.id, "import.queued", { job_id: job.id, host: "lab2", seq: 1, state: "queued", phase: "queued", percent: 0, bytes_done: 0, bytes_total: 100, rate_bps: null, eta_s: null, phase_elapsed_s: null, queue_position: 1, image: null, error: null });
    const opener = page.locator("#jobs tr", { has: page.getByText("ceos:esc", { exact: true }) }).getByRole("button", { name: /^Details of / });
    await opener.click();
    const details = page.locator("#details");
    await details.getByRole("heading", { name: "ceos:esc on lab2" }).waitFor();
    await page.keyboard.press("Escape");
    await details.waitFor({ state: "hidden" });
    assert.equal(await opener.evaluate((el) => el === document.activeElement), true, "the focus is back where Details was opened");
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("simulated and replayed jobs wear a badge and stay out of the jobs list until asked for", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  const queued = (job) => backend.publish(job.id, "import.queued", { job_id: job.id, host: job.host, seq: 1, state: "queued", phase: "queued", percent: 0, bytes_done: 0, bytes_total: 100, rate_bps: null, eta_s: null, phase_elapsed_s: null, queue_position: 1, image: null, error: null });
  const real = backend.addJob({ host: "lab1", image: "ceos:real" });
  const simulated = backend.addJob({ id: "sim-1a2b3c4d", host: "lab1", image: "lab/simulated:1", upload_id: null });
  const replayed = backend.addJob({ id: "job-from-capture", host: "lab2", image: "srlinux:replayed", upload_id: null });
  [real, simulated, replayed].forEach(queued);
  const { page, problems } = await openPage(origin);
  try {
    await signIn(page);
    const rows = page.locator("#jobs tbody tr");
    await rows.first().waitFor();
    await page.waitForTimeout(300);
    assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.job)), [real.id], "only the real import is listed");

    // Their cards (they are running) say what they are.
    const card = (id) => page.locator(`.job-card[data-job="${id}"]`);
    assert.equal(await card(simulated.id).locator(".tag").textContent(), "simulated");
    assert.equal(await card(replayed.id).locator(".tag").textContent(), "replayed");
    assert.equal(await card(real.id).locator(".tag").isVisible(), false);

    await page.getByLabel("simulated and replayed").check();
    await rows.nth(2).waitFor();
    const listed = await rows.evaluateAll((trs) => Object.fromEntries(trs.map((tr) => [tr.dataset.job, tr.querySelector(".tag")?.textContent ?? null])));
    assert.deepEqual(listed, { [real.id]: null, [simulated.id]: "simulated", [replayed.id]: "replayed" });

    await page.getByLabel("simulated and replayed").uncheck();
    await page.selectOption("#jobs-filter", "succeeded");
    await page.getByText("No jobs yet.").waitFor();
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});
