// The built page in Debian's Chromium against the stand-in backend (dev/stand-in-backend.mjs)
// with simulated lab hosts: keyboard sign-in, upload, import, a bar that climbs to 100, the
// polling fallback, a failure with its code, and no console errors. The end-to-end tests against
// the real backend and importer live in tests/e2e/.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { seedHistory } from "../dev/simulate.mjs";
import { ARTIFACTS, BROWSER_NETWORK_NOISE, archiveBytes, signIn, skip, usePageHarness } from "./support/page-harness.js";

const { startBackend, openPage } = usePageHarness();

/** Sign in, upload a small archive and import it on `host`, all from the keyboard where a person would. */
async function importThroughThePage(page, host, image) {
  await page.keyboard.type("operator-token");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "New import" }).waitFor();
  await page.setInputFiles("#file", { name: "ceos-lab-4.35.1F.tar.xz", mimeType: "application/x-xz", buffer: archiveBytes(3 * 1024 * 1024, 3) });
  await page.getByText(/^Uploaded 3.00 MiB/).waitFor();
  await page.getByLabel(host, { exact: true }).focus();
  await page.keyboard.press("Space");
  const imageBox = page.getByLabel("Image", { exact: true });
  await imageBox.fill("");
  await imageBox.type(image);
  await imageBox.press("Enter"); // submits the form
}

/** Every aria-valuenow the job's bar shows until its card reaches a final state (recorded in the page). */
async function followBar(page, name) {
  const card = page.locator(".job-card", { has: page.getByText(name, { exact: true }) });
  await card.waitFor();
  const handle = await card.elementHandle();
  await handle.evaluate((el) => {
    const bar = el.querySelector('[role="progressbar"]');
    el.__values = [Number(bar.getAttribute("aria-valuenow"))];
    new MutationObserver(() => {
      const value = Number(bar.getAttribute("aria-valuenow"));
      if (el.__values.at(-1) !== value) el.__values.push(value);
    }).observe(bar, { attributes: true, attributeFilter: ["aria-valuenow"] });
  });
  await page.waitForFunction((el) => ["succeeded", "failed", "canceled"].includes(el.dataset.state), handle, { timeout: 60000 });
  return { values: await handle.evaluate((el) => el.__values), card, state: await card.getAttribute("data-state") };
}

test("sign in, upload, import: the bar climbs through several values to 100 and the image reaches the catalog", { skip }, async () => {
  const { backend, origin } = await startBackend();
  const { page, problems } = await openPage(origin);
  try {
    await importThroughThePage(page, "lab1", "ceos:4.35.1F");
    const { values, card, state } = await followBar(page, "ceos:4.35.1F on lab1");
    await page.screenshot({ path: join(ARTIFACTS, "page-import-done.png") });
    assert.equal(state, "succeeded");
    assert.ok(values.length >= 4, `several distinct values: ${values}`);
    for (let i = 1; i < values.length; i += 1) assert.ok(values[i] >= values[i - 1], `never backwards: ${values}`);
    assert.equal(values.at(-1), 100);
    assert.match(await card.textContent(), /Imported ceos:4.35.1F · [0-9a-f]{12} · \d/);
    await page.getByRole("table", { name: "Images on lab1" }).getByText("ceos:4.35.1F").waitFor();
    assert.equal(await page.locator("#transport").textContent(), "Live");
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("the finalizing stretch is shown with its running time", { skip }, async () => {
  const { backend, origin } = await startBackend({ speed: 4 });
  const { page, problems } = await openPage(origin);
  try {
    await importThroughThePage(page, "lab2", "ceos:1");
    const card = page.locator(".job-card", { has: page.getByText("ceos:1 on lab2", { exact: true }) });
    await card.getByText(/^Finalizing… \d+ s$/).waitFor({ timeout: 30000 });
    assert.match(await card.getByRole("progressbar").getAttribute("aria-valuetext"), /finalizing/);
    await page.screenshot({ path: join(ARTIFACTS, "page-finalizing.png") });
    await followBar(page, "ceos:1 on lab2");
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("websocket upgrades refused: the page says so, polls, and the import still finishes", { skip }, async () => {
  const { backend, origin } = await startBackend({ blockWebsocket: true, speed: 3 });
  const { page, problems } = await openPage(origin);
  try {
    await importThroughThePage(page, "lab1", "ceos:polled");
    await page.getByText("Polling · websocket unavailable").waitFor({ timeout: 10000 });
    const { values, state } = await followBar(page, "ceos:polled on lab1");
    await page.screenshot({ path: join(ARTIFACTS, "page-polling-done.png") });
    assert.equal(state, "succeeded");
    assert.ok(values.length >= 3, `several distinct values: ${values}`);
    // The browser itself logs each refused websocket handshake; nothing else may appear.
    assert.deepEqual(problems.filter((p) => !BROWSER_NETWORK_NOISE.test(p)), []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("a failed import shows its message and code", { skip }, async () => {
  const { backend, origin } = await startBackend({ failHost: "lab2" });
  const { page, problems } = await openPage(origin);
  try {
    await importThroughThePage(page, "lab2", "ceos:broken");
    const { card, state } = await followBar(page, "ceos:broken on lab2");
    assert.equal(state, "failed");
    assert.match(await card.textContent(), /Failed: the xz stream is corrupt at byte \d+ \(corrupt_compression\)/);
    await page.screenshot({ path: join(ARTIFACTS, "page-failed.png") });
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("a job that found its image already there says so on its card and in the list, not Imported", { skip }, async () => {
  const { backend, origin } = await startBackend({ presentHost: "lab2", speed: 4 });
  const { page, problems } = await openPage(origin);
  try {
    await importThroughThePage(page, "lab2", "ceos:again");
    const { card, state } = await followBar(page, "ceos:again on lab2");
    assert.equal(state, "succeeded");
    const text = await card.textContent();
    assert.match(text, /Already present — nothing imported · ceos:again · 5a5a5a5a5a5a/);
    assert.doesNotMatch(text, /Imported/);
    const row = page.locator("#jobs tr", { has: page.getByText("ceos:again", { exact: true }) });
    assert.match(await row.textContent(), /already present — nothing imported/);
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("Play back re-animates a job's timeline under its own name and says in a line what it does", { skip }, async () => {
  const { backend, origin } = await startBackend({ replay: true, simulate: false });
  seedHistory(backend, { speed: 1 });
  const { page, problems } = await openPage(origin);
  try {
    await signIn(page);
    const row = page.locator("#jobs tr", { has: page.getByText("srlinux:24.10.1", { exact: true }) });
    await row.getByRole("button", { name: /^Details of / }).click();
    await page.locator('#details tbody tr[data-source="stored"]').nth(3).waitFor();
    const playBack = page.getByRole("button", { name: "Play back", exact: true });
    await playBack.waitFor();
    assert.equal(await page.getByRole("button", { name: "Replay", exact: true }).count(), 0, "the page no longer says Replay");
    const help = page.locator("#playback-help");
    assert.match(await help.textContent(), /^Play back shows this job's stored events again.*nothing is counted or delivered again \(ferry replay, in the CLI, re-delivers captured callbacks\)\.$/);
    assert.equal(await help.isVisible(), true);
    assert.equal(await playBack.getAttribute("title"), await help.textContent());
    assert.equal(await playBack.getAttribute("aria-describedby"), "playback-help");

    await page.getByLabel("Playback speed").selectOption("max");
    await playBack.click();
    await page.getByText(/^Playing back 4 stored events/).waitFor();
    await page.locator('#details tbody tr[data-source="replayed"]').nth(3).waitFor();
    assert.match(await page.locator("#details tr.replay-group").textContent(), /^Played back rpl_\d+$/);
    assert.equal(await page.locator('#details tbody tr[data-source="replayed"] .tag').first().textContent(), "played back");
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("an invalid image name is explained as it is typed and keeps Import disabled", { skip }, async () => {
  const { backend, origin } = await startBackend();
  const { page } = await openPage(origin);
  try {
    await page.keyboard.type("operator-token");
    await page.keyboard.press("Enter");
    const imageBox = page.getByLabel("Image", { exact: true });
    await imageBox.type("Arista/ceos");
    await page.getByText("repository 'Arista/ceos' must be lowercase").waitFor();
    assert.equal(await imageBox.getAttribute("aria-invalid"), "true");
    assert.equal(await page.getByRole("button", { name: "Import", exact: true }).isDisabled(), true);
    await imageBox.fill("arista/ceos:4.35.1F");
    assert.equal(await imageBox.getAttribute("aria-invalid"), "false");
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("the image name is optional for a docker-save archive and needed for a file system import", { skip }, async () => {
  const { backend, origin } = await startBackend();
  const { page } = await openPage(origin);
  try {
    await page.keyboard.type("operator-token");
    await page.keyboard.press("Enter");
    await page.getByLabel("lab1", { exact: true }).check();
    await page.setInputFiles("#file", { name: "two-images.tar.xz", mimeType: "application/x-xz", buffer: archiveBytes(2048) });
    await page.getByText(/^Uploaded /).waitFor();
    const imageBox = page.getByLabel("Image", { exact: true });
    await imageBox.fill("");
    const importButton = page.getByRole("button", { name: "Import", exact: true });
    assert.equal(await importButton.isDisabled(), false, "a docker save keeps its own tags");
    await page.getByText("Options", { exact: true }).click();
    await page.getByLabel("Archive format").selectOption("import");
    assert.equal(await importButton.isDisabled(), true);
    assert.match(await page.locator("#import-hint").textContent(), /give an image name \(a file system archive has none\)/);
    await page.getByLabel("Archive format").selectOption("auto");
    const sent = page.waitForRequest((r) => r.method() === "POST" && r.url().endsWith("/api/imports"));
    await importButton.click();
    assert.equal("image" in JSON.parse((await sent).postData()), false);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("a docker-save archive's layers are shown while the engine loads them, and the bar keeps climbing", { skip }, async () => {
  const { backend, origin } = await startBackend({ speed: 4, layers: 7 });
  const { page, problems } = await openPage(origin);
  try {
    await importThroughThePage(page, "lab1", "ceos:loaded");
    const card = page.locator(".job-card", { has: page.getByText("ceos:loaded on lab1", { exact: true }) });
    const line = card.getByText(/^Loading layers [1-6]\/7 · [\d.]+ MiB of 600 MiB · /);
    await line.waitFor({ timeout: 30000 });
    assert.match(await card.getByRole("progressbar").getAttribute("aria-valuetext"), /loading layers/);
    await page.screenshot({ path: join(ARTIFACTS, "page-loading-layers.png") });
    const { values, state } = await followBar(page, "ceos:loaded on lab1");
    assert.equal(state, "succeeded");
    for (let i = 1; i < values.length; i += 1) assert.ok(values[i] >= values[i - 1], `never backwards: ${values}`);
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});
