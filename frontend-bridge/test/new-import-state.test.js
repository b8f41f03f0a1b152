// The "New import" panel's decisions, as pure functions: what Import still needs, the image
// field's verdict, the upload's words, what a stopped upload leaves, and which hosts are ticked.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { chooseHosts, imageVerdict, progressWords, readiness, readinessHint, resumed, retryWords, uploadStopped, uploadedWords } from "../web/panels/new-import-state.js";

const ready = { uploaded: { uploadId: "u1", complete: false }, uploading: true, hostCount: 1, image: "", format: "auto" };
const hosts = (...names) => names.map((name) => ({ name }));

describe("before Import", () => {
  test("Import is possible as soon as the upload exists, before its bytes arrive", () => {
    assert.deepEqual(readiness(ready), []);
    assert.equal(readinessHint([]), "Ready to import.");
  });

  test("Import says in words everything it still needs", () => {
    const missing = readiness({ uploaded: null, uploading: false, hostCount: 0, image: "Not A Name", format: "auto" });
    assert.deepEqual(missing, ["upload an archive", "choose at least one host", "give a valid image name"]);
    assert.equal(readinessHint(missing), "To import: upload an archive, choose at least one host, give a valid image name.");
    assert.deepEqual(readiness({ ...ready, uploaded: null }), ["wait for the upload to start"]);
  });

  test("a file system archive needs an image name; a docker save archive keeps its own tags", () => {
    assert.deepEqual(readiness({ ...ready, format: "import" }), ["give an image name (a file system archive has none)"]);
    assert.deepEqual(readiness({ ...ready, format: "import", image: "ceos:4.35.1F" }), []);
  });

  test("the image field shows its error only once the user typed, and never for an empty field", () => {
    assert.deepEqual(imageVerdict("Bad Name", false), { invalid: false, message: "" });
    assert.deepEqual(imageVerdict("", true), { invalid: false, message: "" });
    assert.deepEqual(imageVerdict("ceos:4.35.1F", true), { invalid: false, message: "" });
    const bad = imageVerdict("Bad Name", true);
    assert.equal(bad.invalid, true);
    assert.ok(bad.message.length > 0);
  });
});

describe("the upload's words", () => {
  test("progress says bytes, rate and time left when they are known", () => {
    assert.deepEqual(progressWords({ bytesSent: 1024, bytesTotal: 4096, rateBps: null, etaS: null, percent: 25 }), { percent: 25, bar: "25 % uploaded", stats: "1.00 KiB of 4.00 KiB" });
    const words = progressWords({ bytesSent: 1024, bytesTotal: 4096, rateBps: 1024, etaS: 3, percent: null });
    assert.equal(words.percent, 0);
    assert.equal(words.stats.split(" · ").length, 3);
    assert.match(words.stats, /left$/);
  });

  test("a dropped connection counts down to its retry, then says it is retrying now", () => {
    assert.deepEqual(retryWords(5000, 1200), { text: "Connection lost — retrying in 4 s", over: false });
    assert.deepEqual(retryWords(5000, 5000), { text: "Connection lost — retrying now", over: true });
  });

  test("a resumed upload leaves the stored list and says how much the server already had", () => {
    const stored = [{ url: "http://b/u1", offset: 512, size: 1024 }, { url: "http://b/u2", offset: 1, size: 2 }];
    const after = resumed(stored, "http://b/u1", "ceos.tar");
    assert.deepEqual(after.stored, [stored[1]]);
    assert.match(after.note, /^Resumed the earlier upload of ceos\.tar: .* were already on the server\.$/);
    assert.equal(resumed(stored, "http://b/other", "x.tar").note, "Resumed the earlier upload of x.tar from what the server already has.");
  });

  test("a finished upload with imports started on it says they have every byte now", () => {
    assert.match(uploadedWords({ uploadId: "u1", size: 2048 }, "u1"), /The imports started on it have every byte now\.$/);
    assert.match(uploadedWords({ uploadId: "u1", size: 2048 }, null), /Choose hosts .* then Import\.$/);
  });
});

describe("a stopped upload", () => {
  const arriving = { uploadId: "u1", complete: false };
  const aborted = { code: "aborted", message: "aborted" };

  test("canceled with imports started on it, it is removed with them and cannot be resumed", () => {
    assert.deepEqual(uploadStopped({ uploaded: arriving, startedOn: "u1", error: aborted }), { uploaded: null, resumable: false, stats: "Upload canceled and removed; the imports started on it are canceled." });
  });

  test("canceled or failed on the way, Import waits for Resume upload, which continues from the server's offset", () => {
    const canceled = uploadStopped({ uploaded: arriving, startedOn: null, error: aborted });
    assert.deepEqual(canceled, { uploaded: null, resumable: true, stats: "Upload canceled. Resume upload continues from what the server already has." });
    const failed = uploadStopped({ uploaded: null, startedOn: null, error: { code: "network", message: "connection reset" } });
    assert.equal(failed.resumable, true);
    assert.equal(failed.stats, "Upload failed: connection reset (network). Resume upload continues from what the server already has.");
  });

  test("a refusal the same upload would get again is not offered for resuming", () => {
    for (const code of ["too_large", "forbidden", "unauthorized", "invalid_request"]) {
      const after = uploadStopped({ uploaded: null, startedOn: null, error: { code, message: "no" } });
      assert.deepEqual(after, { uploaded: null, resumable: false, stats: `Upload failed: no (${code}).` });
    }
  });

  test("a complete upload stays importable whatever stops afterwards", () => {
    const complete = { uploadId: "u1", complete: true };
    assert.equal(uploadStopped({ uploaded: complete, startedOn: null, error: aborted }).uploaded, complete);
  });
});

describe("host choices", () => {
  test("the only host there is is ticked, until the user ticks or unticks one", () => {
    assert.deepEqual([...chooseHosts(new Set(), hosts("lab1"), false)], ["lab1"]);
    assert.deepEqual([...chooseHosts(new Set(), hosts("lab1"), true)], []);
    assert.deepEqual([...chooseHosts(new Set(), hosts("lab1", "lab2"), false)], []);
  });

  test("a host that leaves the list is unticked; the others keep their ticks", () => {
    const before = new Set(["lab1", "lab2"]);
    const after = chooseHosts(before, hosts("lab2", "lab3"), true);
    assert.deepEqual([...after], ["lab2"]);
    assert.deepEqual([...before], ["lab1", "lab2"], "the given set is left as it was");
  });
});
