// The page's job store: newest seq wins across feeds, timelines count each seq once.
import assert from "node:assert/strict";
import { test } from "node:test";

import { JobStore } from "../web/store.js";
import { completedData, eventData, jobSnapshot } from "./support/fakes.js";

test("updates from the list, the job watch and snapshots merge by seq", async () => {
  const store = new JobStore();
  const seen = [];
  store.subscribe((ids) => seen.push([...ids]));
  store.putSnapshot(jobSnapshot(2));
  store.putEvent(eventData(4));
  store.putEvent(eventData(3)); // late duplicate from the other feed
  store.putSnapshot(jobSnapshot(3));
  assert.equal(store.get("job-1").percent, 40);
  assert.equal(store.get("job-1").image, "ceos:4.35.1F");
  assert.ok(store.get("job-1").seenAt > 0, "the page saw the job move");
  store.putEvent(completedData(5));
  assert.equal(store.get("job-1").state, "succeeded");
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.deepEqual(seen, [["job-1"]], "one batched render for many updates");
});

test("a timeline lists each counted seq once in order, then operator replays", () => {
  const store = new JobStore();
  const at = new Date(0);
  for (const [seq, source] of [[2, "live"], [1, "stored"], [2, "stored"], [3, "polled"], [1, "replayed"], [2, "replayed"]]) {
    store.addTimeline("job-1", { seq, type: "import.progress", at, source, data: eventData(seq) });
  }
  assert.deepEqual(store.timeline("job-1").map((e) => `${e.seq}:${e.source}`), ["1:stored", "2:live", "3:polled", "1:replayed", "2:replayed"]);
});

test("a replay shows once however many feeds bring it; a second replay shows again", () => {
  const store = new JobStore();
  const at = new Date(0);
  store.addTimeline("job-1", { seq: 1, type: "import.queued", at, source: "live", data: eventData(1) });
  for (const replayId of ["rpl_1", "rpl_1", "rpl_2"]) {
    for (const seq of [1, 2]) store.addTimeline("job-1", { seq, type: "import.progress", at, source: "replayed", data: eventData(seq), replayId });
  }
  assert.deepEqual(store.timeline("job-1").map((e) => `${e.seq}:${e.source}:${e.replayId ?? ""}`), ["1:live:", "1:replayed:rpl_1", "2:replayed:rpl_1", "1:replayed:rpl_2", "2:replayed:rpl_2"]);
});

test("a payload that broke the contract is kept in its job's timeline once, never counted", () => {
  const store = new JobStore();
  const at = new Date(0);
  store.addTimeline("job-1", { seq: 1, type: "import.queued", at, source: "live", data: eventData(1) });
  const bad = { ...eventData(2), percent: 250 };
  for (let i = 0; i < 3; i += 1) store.addInvalid("job-1", { type: "import.progress", data: bad, at, message: "import.progress: /data/percent must be <= 100" });
  store.addInvalid("job-1", { type: "import.progress", data: { job_id: "job-1", seq: "x" }, at, message: "import.progress: /data/seq must be integer" });
  store.addTimeline("job-1", { seq: 2, type: "import.progress", at, source: "polled", data: eventData(2) });
  store.addTimeline("job-1", { seq: 3, type: "import.progress", at, source: "live", data: eventData(3) });
  assert.deepEqual(store.timeline("job-1").map((e) => `${e.seq}:${e.source}`), ["1:live", "2:polled", "2:invalid", "3:live", "null:invalid"]);
  assert.deepEqual(store.invalid("job-1").map((e) => e.message), ["import.progress: /data/percent must be <= 100", "import.progress: /data/seq must be integer"]);
  assert.deepEqual(store.invalid("job-2"), []);
  assert.equal(store.get("job-1"), undefined, "the view is not touched by what was not counted");
});
