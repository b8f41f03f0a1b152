// The page's session in Chromium against the stand-in backend: a reload keeps the user signed in;
// a backend that is down (a proxy's 502, a refused connection) while the page loads is not a
// verdict on the token, so the page keeps it, says so and signs in again when the backend is back;
// only a token the backend refuses (401) sends the user back to sign-in.
import assert from "node:assert/strict";
import { test } from "node:test";

import { BROWSER_NETWORK_NOISE, signIn, skip, usePageHarness } from "./support/page-harness.js";

const { startBackend, openPage } = usePageHarness();

const savedToken = (page) => page.evaluate(() => sessionStorage.getItem("ferry.token"));

async function expectSignedIn(page) {
  await page.locator("#transport", { hasText: /^Live$/ }).waitFor({ timeout: 20000 });
  await page.getByRole("heading", { name: "New import" }).waitFor();
  assert.equal(await page.locator("#signin").isHidden(), true, "no sign-in form");
  assert.equal(await page.locator("#role").textContent(), "Signed in · operator");
}

/** Reload while the backend cannot answer; the page must keep the token and keep asking. */
async function reloadWhileDown(page, meRequests, code) {
  const before = meRequests.length;
  await page.reload();
  await page.locator("#transport", { hasText: "Backend unreachable · retrying" }).waitFor();
  await page.locator("#notice", { hasText: `(${code})` }).waitFor();
  assert.match(await page.locator("#notice").textContent(), /Your token is kept/);
  assert.equal(await page.locator("#signin").isHidden(), true, "not sent back to sign-in");
  assert.equal(await page.locator("#app").isHidden(), true, "nothing shown as if it were current");
  assert.equal(await savedToken(page), "operator-token");
  // It keeps asking (after 1 s, then 2 s, …).
  const deadline = Date.now() + 10000;
  while (meRequests.length < before + 2 && Date.now() < deadline) await page.waitForTimeout(100);
  assert.ok(meRequests.length >= before + 2, `sign-in retried: ${meRequests.length - before} requests`);
  assert.equal(await page.locator("#signin").isHidden(), true);
}

test("a reload keeps the session; a backend down during the reload signs nobody out, and the page recovers when it is back", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  const { page, problems } = await openPage(origin);
  const meRequests = [];
  page.on("request", (request) => request.url().endsWith("/api/me") && meRequests.push(request.url()));
  try {
    await signIn(page);
    await expectSignedIn(page);

    await page.reload();
    await expectSignedIn(page);

    // A proxy whose backend is down answers 502.
    backend.gatewayDown = true;
    await reloadWhileDown(page, meRequests, "server_error");
    backend.gatewayDown = false;
    await expectSignedIn(page);
    assert.equal(await page.locator("#notice").isHidden(), true, "the notice is gone once signed in");

    // No answer at all: the connection is refused.
    await page.route("**/api/me", (route) => route.abort("connectionrefused"));
    await reloadWhileDown(page, meRequests, "network_error");
    await page.unroute("**/api/me");
    await expectSignedIn(page);
    assert.equal(await savedToken(page), "operator-token");
    assert.deepEqual(problems.filter((p) => !BROWSER_NETWORK_NOISE.test(p)), []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("a token the backend no longer accepts (401) is forgotten and the page asks for a new one", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  const { page } = await openPage(origin);
  try {
    await signIn(page);
    await expectSignedIn(page);
    delete backend.tokens["operator-token"]; // revoked
    await page.reload();
    await page.getByText("That token was not accepted.").waitFor();
    assert.equal(await page.locator("#signin").isVisible(), true);
    assert.equal(await page.locator("#app").isHidden(), true);
    assert.equal(await savedToken(page), null);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "token", "focus is in the token field");
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("Sign out while the backend is unreachable forgets the token and stops retrying", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  const { page } = await openPage(origin);
  try {
    await signIn(page);
    await expectSignedIn(page);
    backend.gatewayDown = true;
    await page.reload();
    await page.locator("#transport", { hasText: "Backend unreachable · retrying" }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#signin").waitFor();
    assert.equal(await savedToken(page), null);
    backend.gatewayDown = false;
    await page.waitForTimeout(1500); // the next retry would have come by now
    assert.equal(await page.locator("#signin").isVisible(), true, "still at sign-in");
  } finally {
    await page.context().close();
    await backend.close();
  }
});
