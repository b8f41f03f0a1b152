// How a job's deliveries read: runs of plain applied progress fold into one row; the rest stand
// alone. And how Details writes a job's times: with their date and time zone, and its duration.
import assert from "node:assert/strict";
import { test } from "node:test";

import { groupDeliveries, headerLines, prettyJson, runLabel } from "../web/delivery-groups.js";
import { formatStamp, jobDuration, jobThatMade } from "../web/format.js";

const at = (i) => new Date(Date.UTC(2026, 11, 7, 2, 0, 0, i * 100)).toISOString();
const progress = (seq, extra = {}) => ({ type: "import.progress", verdict: "applied", seq, duplicates: 0, received_at: at(seq), ...extra });

test("forty applied progress deliveries fold into one run between the ones that stand out", () => {
  const list = [
    { type: "import.started", verdict: "applied", seq: 1, duplicates: 0, received_at: at(1) },
    progress(2, { duplicates: 1 }), // retried: stands alone
    ...Array.from({ length: 40 }, (_, i) => progress(i + 3)),
    progress(1, { verdict: "stale" }),
    { type: "import.completed", verdict: "applied", seq: 43, duplicates: 0, received_at: at(43) },
  ];
  const entries = groupDeliveries(list);
  assert.deepEqual(
    entries.map((e) => e.kind),
    ["one", "one", "run", "one", "one"],
  );
  const run = entries[2];
  assert.equal(run.count, 40);
  assert.equal(run.first, 2, "the run knows where it starts in the list (for delays)");
  assert.equal(runLabel(run), "progress applied ×40, seq 3–42");
  assert.deepEqual(run.deliveries.map((d) => d.seq), Array.from({ length: 40 }, (_, i) => i + 3));
  assert.equal(entries[3].delivery.verdict, "stale");
  assert.deepEqual(entries.filter((e) => e.kind === "one").map((e) => e.index), [0, 1, 42, 43]);
});

test("short runs are not folded", () => {
  const entries = groupDeliveries([progress(1), progress(2), { type: "import.completed", verdict: "applied", seq: 3 }]);
  assert.deepEqual(entries.map((e) => e.kind), ["one", "one", "one"]);
  assert.deepEqual(groupDeliveries([]), []);
});

test("bodies and headers are laid out for reading, and anything not JSON is shown as it came", () => {
  assert.equal(prettyJson('{"a":1}'), '{\n  "a": 1\n}');
  assert.equal(prettyJson("not json"), "not json");
  assert.equal(prettyJson(null), "");
  assert.equal(headerLines({ "webhook-id": "msg_1", "content-type": "application/json" }), "webhook-id: msg_1\ncontent-type: application/json");
});

test("a job's times carry their date and time zone, and its duration runs until it ends", () => {
  assert.equal(formatStamp("2026-12-07T02:05:40.250Z", { timeZone: "UTC" }), "2026-12-07 02:05:40 UTC");
  assert.match(formatStamp("2026-12-07T02:05:40Z", { timeZone: "Europe/Berlin" }), /^2026-12-07 03:05:40 (GMT\+1|CET)$/);
  assert.equal(formatStamp(null), "–");
  assert.equal(formatStamp("garbage"), "–");
  const job = { created_at: "2026-12-07T02:00:00Z", finished_at: "2026-12-07T02:00:04.5Z" };
  assert.equal(jobDuration(job), 4.5);
  assert.equal(jobDuration({ created_at: "2026-12-07T02:00:00Z" }, Date.parse("2026-12-07T02:01:00Z")), 60);
  assert.equal(jobDuration({}), null);
});

test("the catalog names the newest succeeded job on that host that made the image", () => {
  const views = [
    { id: "j1", host: "lab1", state: "succeeded", created_at: "2026-12-07T01:00:00Z", result: { id: "sha256:a" } },
    { id: "j2", host: "lab1", state: "succeeded", created_at: "2026-12-07T02:00:00Z", result: { id: "sha256:a" } },
    { id: "j3", host: "lab2", state: "succeeded", created_at: "2026-12-07T03:00:00Z", result: { id: "sha256:a" } },
    { id: "j4", host: "lab1", state: "succeeded", created_at: "2026-12-07T03:00:00Z", result: { id: "sha256:m", images: [{ id: "sha256:b" }] } },
    { id: "j5", host: "lab1", state: "failed", created_at: "2026-12-07T04:00:00Z", result: { id: "sha256:a" } },
  ];
  assert.equal(jobThatMade(views, "lab1", "sha256:a").id, "j2");
  assert.equal(jobThatMade(views, "lab1", "sha256:b").id, "j4", "one of several images an archive brought");
  assert.equal(jobThatMade(views, "lab1", "sha256:z"), null);
  assert.equal(jobThatMade(views, "lab1", undefined), null);
});
