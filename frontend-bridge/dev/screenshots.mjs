// Drive the page in Debian's Chromium (playwright-core) against a running preview, and save
// screenshots of the key states; print every console error and failed request.
//
//   node dev/screenshots.mjs [--url http://127.0.0.1:8090] [--out test-artifacts] [--width 1366 --height 768]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8090" },
    out: { type: "string", default: "test-artifacts" },
    width: { type: "string", default: "1366" },
    height: { type: "string", default: "768" },
    token: { type: "string", default: "operator-token" },
    "full-page": { type: "boolean", default: false },
  },
});

export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

mkdirSync(args.out, { recursive: true });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
const page = await browser.newPage({ viewport: { width: Number(args.width), height: Number(args.height) } });
const problems = [];
page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
const shot = async (name) => {
  await page.screenshot({ path: join(args.out, `${name}.png`), fullPage: args["full-page"] });
  console.log(`saved ${join(args.out, `${name}.png`)}`);
};

await page.goto(args.url);
await shot("01-signin");
await page.getByLabel("Access token").fill("wrong");
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByText("That token was not accepted.").waitFor();
await shot("02-signin-refused");
await page.getByLabel("Access token").fill(args.token);
await page.keyboard.press("Enter");
await page.getByRole("heading", { name: "Imports" }).waitFor();
await page.waitForTimeout(1500);
await shot("03-signed-in");

// A generated archive, uploaded through the file picker.
const archive = Buffer.alloc(24 * 1024 * 1024, 7);
await page.setInputFiles("#file", { name: "cEOS-lab-4.35.1F.tar.xz", mimeType: "application/x-xz", buffer: archive });
await page.getByText(/Uploaded/).waitFor({ timeout: 30000 });
await page.getByLabel("Image", { exact: true }).fill("Ceos:4.35.1F");
await shot("04-image-invalid");
await page.getByLabel("Image", { exact: true }).fill("ceos:4.35.1F");
await page.getByLabel("lab1", { exact: true }).check();
await page.getByLabel("lab2", { exact: true }).check();
await shot("05-ready");
await page.getByRole("button", { name: "Import", exact: true }).click();
await page.waitForTimeout(6000);
await shot("06-importing");
await page.getByText(/Finalizing…/).first().waitFor({ timeout: 60000 });
await page.waitForTimeout(2500);
await shot("07-finalizing");
await page.getByText(/^Imported ceos:4.35.1F/).first().waitFor({ timeout: 60000 });
await page.waitForTimeout(800);
await shot("08-done");
await page.getByRole("button", { name: /Details of ceos:4.34.0F/ }).click();
await page.waitForTimeout(500);
await page.getByRole("heading", { name: /ceos:4.34.0F on lab1/ }).waitFor();
await page.waitForTimeout(800);
await shot("09-details-failed");
const replay = page.getByRole("button", { name: "Play back" });
if (await replay.isVisible()) {
  await replay.click();
  await page.waitForTimeout(1200);
  await shot("10-replayed");
}
await page.screenshot({ path: join(args.out, "11-full-page.png"), fullPage: true });
const bars = await page.$$eval('[role="progressbar"]', (els) => els.map((e) => `${e.getAttribute("aria-label") ?? e.getAttribute("aria-labelledby")}=${e.getAttribute("aria-valuenow")} (${e.getAttribute("aria-valuetext")})`));
console.log(bars.join("\n"));
writeFileSync(join(args.out, "problems.txt"), problems.join("\n"));
console.log(problems.length ? `PROBLEMS:\n${problems.join("\n")}` : "no console errors, no failed requests");
await browser.close();
