// "New import" in Chromium against the stand-in backend: the host choices survive the periodic
// hosts refresh (ticks and focus kept, rebuilt only when the set of hosts changes), a file dropped
// on the drop zone uploads, and an upload that failed for good resumes from the server's offset.
import assert from "node:assert/strict";
import { test } from "node:test";

import { BROWSER_NETWORK_NOISE, labHost, signIn, skip, usePageHarness } from "./support/page-harness.js";

const { startBackend, openPage } = usePageHarness();

const MiB = 1024 * 1024;
const hint = (page) => page.locator("#import-hint").textContent();

test("the host choices keep the user's ticks and focus across refreshes and change only when the hosts do", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  // The page reloads the hosts every 10 s: the test moves the page's clock instead of waiting.
  const { page, problems } = await openPage(origin, { beforeGoto: (p) => p.clock.install() });
  let hostLoads = 0;
  page.on("response", (response) => response.url().endsWith("/api/hosts") && (hostLoads += 1));
  const refreshHosts = async () => {
    const before = hostLoads;
    await page.clock.fastForward(10000);
    await page.waitForFunction(() => true); // let the page run
    for (let i = 0; hostLoads === before && i < 100; i += 1) await page.waitForTimeout(50);
    assert.ok(hostLoads > before, "the hosts were loaded again");
    await page.waitForTimeout(100); // the answer is rendered
  };
  try {
    await signIn(page);
    await page.getByLabel("lab2", { exact: true }).waitFor();
    await page.getByLabel("lab1", { exact: true }).check();
    await page.getByLabel("lab2", { exact: true }).focus();
    await page.evaluate(() => {
      window.__boxes = { lab1: document.getElementById("host-lab1"), lab2: document.getElementById("host-lab2") };
    });
    const same = (name) => page.evaluate((n) => document.getElementById(`host-${n}`) === window.__boxes[n], name);
    const focused = () => page.evaluate(() => document.activeElement?.id);
    assert.doesNotMatch(await hint(page), /choose at least one host/);

    // Same hosts, new health: nothing is rebuilt, only the dot changes.
    backend.hosts = [labHost("lab1"), labHost("lab2", { alive: false })];
    await refreshHosts();
    await page.locator(".choice:has(#host-lab2) .dot.bad").waitFor();
    assert.equal(await same("lab1"), true);
    assert.equal(await same("lab2"), true);
    assert.equal(await page.getByLabel("lab1", { exact: true }).isChecked(), true);
    assert.equal(await focused(), "host-lab2", "focus stays where the user left it");

    // A new host joins: it is added; the others keep their boxes, ticks and focus.
    backend.hosts = [labHost("lab1"), labHost("lab2", { alive: false }), labHost("lab3")];
    await refreshHosts();
    await page.getByLabel("lab3", { exact: true }).waitFor();
    assert.equal(await same("lab1"), true);
    assert.equal(await same("lab2"), true);
    assert.equal(await page.getByLabel("lab1", { exact: true }).isChecked(), true);
    assert.equal(await focused(), "host-lab2");
    await page.keyboard.press("Space"); // the user goes on ticking where they were
    assert.equal(await page.getByLabel("lab2", { exact: true }).isChecked(), true);

    // A ticked host goes away: its tick goes with it, the rest stay.
    backend.hosts = [labHost("lab2", { alive: false }), labHost("lab3")];
    await refreshHosts();
    await page.getByLabel("lab1", { exact: true }).waitFor({ state: "detached" });
    assert.equal(await same("lab2"), true);
    assert.equal(await focused(), "host-lab2");
    assert.doesNotMatch(await hint(page), /choose at least one host/, "lab2 is still chosen");
    await page.keyboard.press("Space");
    assert.match(await hint(page), /choose at least one host/, "and nothing else was");
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});
