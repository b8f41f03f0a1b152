// "New import" in Chromium against the stand-in backend: the host choices survive the periodic
// hosts refresh (ticks and focus kept, rebuilt only when the set of hosts changes), a file dropped
// on the drop zone uploads, and an upload that failed for good resumes from the server's offset.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform } from "node:stream";
import { test } from "node:test";

import { BROWSER_NETWORK_NOISE, archiveBytes, labHost, signIn, skip, usePageHarness } from "./support/page-harness.js";

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

test("a file dropped on the drop zone starts its upload", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  const { page, problems } = await openPage(origin);
  const created = [];
  page.on("request", (r) => r.method() === "POST" && r.url().endsWith("/api/uploads/") && created.push(r.headers()["upload-length"]));
  try {
    await signIn(page);
    // A person drops onto whatever lies under the pointer in the middle of the zone.
    const dropped = await page.evaluate(() => {
      const zone = document.getElementById("dropzone");
      const box = zone.getBoundingClientRect();
      const point = { clientX: box.left + box.width / 2, clientY: box.top + box.height / 2, bubbles: true, cancelable: true, composed: true };
      const target = document.elementFromPoint(point.clientX, point.clientY);
      const dataTransfer = new DataTransfer();
      dataTransfer.items.add(new File([new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), new Uint8Array(2 * 1024 * 1024 - 6).fill(7)], "srlinux-24.10.1.tar.xz", { type: "application/x-xz" }));
      const fire = (type) => {
        const event = new DragEvent(type, { ...point, dataTransfer });
        target.dispatchEvent(event);
        return event.defaultPrevented;
      };
      const entered = fire("dragenter");
      const accepted = fire("dragover"); // a browser lets the drop happen only if dragover was canceled
      const highlighted = zone.classList.contains("over");
      const handled = fire("drop");
      return { inZone: zone.contains(target), entered, accepted, highlighted, handled, stillHighlighted: zone.classList.contains("over") };
    });
    assert.deepEqual(dropped, { inZone: true, entered: true, accepted: true, highlighted: true, handled: true, stillHighlighted: false });
    await page.getByText(/^Uploaded 2.00 MiB/).waitFor();
    assert.deepEqual(created, [String(2 * MiB)], "one tus upload of the dropped file");
    assert.equal(await page.locator(".upload-status .file-name").textContent(), "srlinux-24.10.1.tar.xz · 2.00 MiB");
    assert.equal(await page.getByLabel("Image", { exact: true }).inputValue(), "srlinux:24.10.1", "a name is suggested from the file");
    assert.equal(await page.getByRole("progressbar", { name: "Upload progress" }).getAttribute("aria-valuenow"), "100");
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("an upload that failed for good resumes from the server's offset with Resume upload", { skip }, async () => {
  // The lab link goes down mid-upload and stays down while tus tries again: every retry is cut, tus
  // runs through its retry delays (the page's clock is moved instead of waiting) and gives up for
  // good. The server keeps the bytes it got. Nothing here hangs on browser network emulation: the
  // stand-in itself cuts the first PATCH after 2 MiB have landed and drops every request after it.
  const size = 32 * MiB; // far more than loopback socket buffers hold, so the bar cannot run ahead
  const requests = []; // every tus request the server got: method, url, Upload-Offset
  const link = { cut: false, down: false };
  const tusGate = (req, res, tus) => {
    requests.push({ method: req.method, url: req.url, offset: Number(req.headers["upload-offset"] ?? NaN) });
    if (link.down) return req.socket.destroy();
    if (req.method === "PATCH" && !link.cut) {
      link.cut = true;
      cutAfter(tus.datastore, 2 * MiB, () => {
        link.down = true;
        req.socket.destroy();
      });
    }
    return tus.handle(req, res);
  };
  const { backend, origin } = await startBackend({ simulate: false, tusGate });
  const { page, problems } = await openPage(origin, { beforeGoto: (p) => p.clock.install() });
  const sent = (method) => requests.filter((r) => r.method === method);
  const failure = page.getByText(/^Upload failed: .*\(upload_failed\)\. Resume upload continues/);
  try {
    await signIn(page);
    await page.setInputFiles("#file", { name: "ceos-lab-4.35.1F.tar.xz", mimeType: "application/x-xz", buffer: archiveBytes(size, 5) });
    // Handing 32 MiB to the browser goes over the debugging pipe: seconds on a busy machine, so wait up to a minute.
    for (let i = 0; !link.down && i < 2400; i += 1) await page.waitForTimeout(25);
    assert.equal(link.down, true, "the first PATCH reached the server");
    // tus's retry delays add up to 39 s: move the clock past each of them until it gives up.
    for (let i = 0; !(await failure.isVisible()) && i < 200; i += 1) {
      await page.clock.fastForward(2000);
      await page.waitForTimeout(50);
    }
    await failure.waitFor({ timeout: 5000 });
    assert.ok(sent("HEAD").length >= 2, `tus tried again before it gave up: ${JSON.stringify(requests)}`);
    const stoppedAt = Number(await page.getByRole("progressbar", { name: "Upload progress" }).getAttribute("aria-valuenow"));
    assert.ok(stoppedAt > 0 && stoppedAt < 100, `the bar stopped where the upload did: ${stoppedAt}`);
    assert.equal(await page.getByRole("button", { name: "Import", exact: true }).isDisabled(), true);

    link.down = false; // the link is back
    const before = requests.length;
    await page.getByRole("button", { name: "Resume upload" }).click();
    await page.getByText(/^Uploaded 32.0 MiB/).waitFor({ timeout: 20000 });
    const log = JSON.stringify(requests);
    assert.equal(sent("POST").length, 1, `no second upload was created: ${log}`);
    assert.ok(requests.every((r) => r.method === "POST" || r.url === requests[1].url), `one upload URL throughout: ${log}`);
    const resumed = requests.slice(before).filter((r) => r.method === "PATCH");
    assert.equal(resumed.length, 1, log);
    assert.equal(resumed[0].offset, 2 * MiB, `resumed from the server's offset, not from 0: ${log}`);
    assert.equal(await page.getByRole("button", { name: "Resume upload" }).isHidden(), true);
    assert.deepEqual(problems.filter((p) => !BROWSER_NETWORK_NOISE.test(p)), []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("a file that is no archive is refused from its first bytes before any upload request", { skip }, async () => {
  const { backend, origin } = await startBackend({ simulate: false });
  const { page, problems } = await openPage(origin);
  const uploads = [];
  page.on("request", (r) => r.url().includes("/api/uploads") && uploads.push(`${r.method()} ${r.url()}`));
  const stats = page.locator("#upload-stats");
  try {
    await signIn(page);
    await page.setInputFiles("#file", { name: "notes.tar.gz", mimeType: "application/gzip", buffer: Buffer.from("just some text\n".repeat(4000)) });
    await page.getByText(/^Not uploaded: the file is not an image archive.* \(not_an_archive\)\./).waitFor();
    assert.equal(await page.getByRole("progressbar", { name: "Upload progress" }).getAttribute("aria-valuenow"), "0");
    assert.match(await page.locator("#import-hint").textContent(), /upload an archive/);
    assert.equal(await page.getByRole("button", { name: "Cancel upload" }).isHidden(), true);

    await page.setInputFiles("#file", { name: "empty.tar", mimeType: "application/x-tar", buffer: Buffer.alloc(0) });
    await page.getByText(/^Not uploaded: the archive file is empty \(empty_archive\)\./).waitFor();
    assert.deepEqual(uploads, [], "not one upload request for either file");

    // A real archive after a refused one uploads as usual, and the refusal is gone.
    await page.setInputFiles("#file", { name: "ceos.tar.xz", mimeType: "application/x-xz", buffer: archiveBytes(MiB, 2) });
    await page.getByText(/^Uploaded 1.00 MiB/).waitFor();
    assert.equal(await stats.evaluate((el) => el.classList.contains("error-text")), false);
    assert.ok(uploads.some((u) => u.startsWith("POST")), "the archive was uploaded");
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

test("leaving during an upload asks first; after a reload the same file continues it, and the page says so", { skip }, async () => {
  // The link goes down after 2 MiB and stays down, so the upload is still running (tus retrying)
  // when the user reloads.
  const size = 32 * MiB;
  const requests = [];
  const link = { cut: false, down: false };
  const tusGate = (req, res, tus) => {
    requests.push({ method: req.method, offset: Number(req.headers["upload-offset"] ?? NaN) });
    if (link.down) return req.socket.destroy();
    if (req.method === "PATCH" && !link.cut) {
      link.cut = true;
      cutAfter(tus.datastore, 2 * MiB, () => {
        link.down = true;
        req.socket.destroy();
      });
    }
    return tus.handle(req, res);
  };
  const dir = mkdtempSync(join(tmpdir(), "ferry-page-file-"));
  const path = join(dir, "ceos-lab-4.35.1F.tar.xz");
  writeFileSync(path, archiveBytes(size, 5));
  const { backend, origin } = await startBackend({ simulate: false, tusGate });
  const { page, problems } = await openPage(origin);
  const dialogs = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.type());
    dialog.accept();
  });
  try {
    await signIn(page);
    await page.setInputFiles("#file", path);
    // Handing 32 MiB to the browser goes over the debugging pipe: seconds on a busy machine, so wait up to a minute.
    for (let i = 0; !link.down && i < 2400; i += 1) await page.waitForTimeout(25);
    assert.equal(link.down, true, "the first PATCH reached the server");
    await page.getByRole("heading", { name: "New import" }).click(); // a person has touched the page
    await page.reload();
    assert.deepEqual(dialogs, ["beforeunload"], "the browser asked before leaving the running upload");

    link.down = false;
    const note = page.locator("#stored-uploads");
    await note.getByText("ceos-lab-4.35.1F.tar.xz: choose the same file to continue the upload (2.0 of 32.0 MiB are on the server).").waitFor();
    const before = requests.length;
    await page.setInputFiles("#file", path);
    await page.getByText("Resumed the earlier upload of ceos-lab-4.35.1F.tar.xz: 2.0 of 32.0 MiB were already on the server.").waitFor();
    await page.getByText(/^Uploaded 32.0 MiB/).waitFor({ timeout: 20000 });
    const log = JSON.stringify(requests);
    assert.equal(requests.filter((r) => r.method === "POST").length, 1, `no second upload was created: ${log}`);
    assert.deepEqual(requests.slice(before).filter((r) => r.method === "PATCH").map((r) => r.offset), [2 * MiB], log);
    assert.equal(await note.textContent(), "", "nothing is left to continue");

    // Done uploads are forgotten: a reload offers nothing, and leaving asks nothing.
    await page.reload();
    await page.getByRole("heading", { name: "New import" }).waitFor();
    await page.waitForTimeout(300);
    assert.equal(await note.textContent(), "");
    assert.deepEqual(dialogs, ["beforeunload"]);
    assert.deepEqual(problems.filter((p) => !BROWSER_NETWORK_NOISE.test(p)), []);
  } finally {
    await page.context().close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a dropped connection is retried by itself and said in words; offline, the upload waits and resumes when the browser is back", { skip }, async () => {
  const size = 32 * MiB;
  const requests = [];
  const link = { cut: false, down: false };
  const tusGate = (req, res, tus) => {
    requests.push({ method: req.method, offset: Number(req.headers["upload-offset"] ?? NaN) });
    if (link.down) return req.socket.destroy();
    if (req.method === "PATCH" && !link.cut) {
      link.cut = true;
      cutAfter(tus.datastore, 2 * MiB, () => {
        link.down = true;
        req.socket.destroy();
      });
    }
    return tus.handle(req, res);
  };
  const { backend, origin } = await startBackend({ simulate: false, tusGate });
  const { page, problems } = await openPage(origin);
  const stats = page.locator("#upload-stats");
  try {
    await signIn(page);
    await page.setInputFiles("#file", { name: "ceos-lab-4.35.1F.tar.xz", mimeType: "application/x-xz", buffer: archiveBytes(size, 5) });
    // tus waits 0, 1 and then 3 s between tries: the page says so, and counts down.
    await page.getByText("Connection lost — retrying in 3 s").waitFor({ timeout: 10000 });
    await page.getByText(/^Connection lost — retrying in [12] s$/).waitFor({ timeout: 5000 });
    assert.doesNotMatch(await stats.textContent(), /object ProgressEvent|response code/, "no raw tus message");

    // The browser goes offline (CDP): no more tries until it is back, and the page says it waits.
    await page.context().setOffline(true);
    await page.getByText("Offline — the upload continues by itself when the browser is back online.").waitFor({ timeout: 10000 });
    const whileOffline = requests.length;
    link.down = false;
    await page.waitForTimeout(1500);
    assert.equal(requests.length, whileOffline, "nothing is tried while offline");
    assert.equal(await page.getByRole("button", { name: "Resume upload" }).isHidden(), true, "no click needed");

    await page.context().setOffline(false);
    await page.getByText(/^Uploaded 32.0 MiB/).waitFor({ timeout: 20000 });
    const log = JSON.stringify(requests);
    assert.equal(requests.filter((r) => r.method === "POST").length, 1, `one upload throughout: ${log}`);
    assert.deepEqual(requests.slice(whileOffline).filter((r) => r.method === "PATCH").map((r) => r.offset), [2 * MiB], `resumed from the server's offset: ${log}`);
    assert.deepEqual(problems.filter((p) => !BROWSER_NETWORK_NOISE.test(p)), []);
  } finally {
    await page.context().close();
    await backend.close();
  }
});

const CUT_PAUSE_MS = 1000;

/** The datastore's next write keeps only the first `limit` bytes of its body; `onCut` breaks the request there. */
function cutAfter(store, limit, onCut) {
  const write = store.write;
  store.write = (readable, id, offset) => {
    store.write = write;
    let taken = 0;
    const kept = new Transform({
      transform(chunk, _encoding, done) {
        const room = limit - taken;
        taken += chunk.length;
        if (room <= 0 || taken < limit) return done(null, room > 0 ? chunk : undefined);
        // The limit is reached: keep what fits, then hold the body (the browser's socket fills up) for
        // a while before the cut. Over loopback 2 MiB land in a few milliseconds, faster than the
        // browser reports upload progress (it samples it on a timer): without the pause, a fast machine
        // cuts the upload before the page could ever see a byte of it go out.
        this.push(chunk.subarray(0, room));
        setTimeout(() => {
          done();
          onCut(); // the server's own abort handling ends the body
        }, CUT_PAUSE_MS);
      },
    });
    return write.call(store, readable.pipe(kept), id, offset);
  };
}
