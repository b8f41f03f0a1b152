// Upload progress maths and the stream decisions, as pure functions.
import assert from "node:assert/strict";
import { test } from "node:test";

import { etaSeconds, nextRate, percentOf } from "../src/progress.js";
import { applyEvent, applySnapshot, newStream, snapshotProgress, terminalFromSnapshot } from "../src/seq.js";
import { completedData, eventData, jobSnapshot } from "./support/fakes.js";

test("the rate follows real bytes and falls when they stop", () => {
  let state = nextRate(null, 0, 0);
  assert.equal(state.rate, null);
  state = nextRate(state, 1000, 100); // too close to measure
  assert.equal(state.rate, null);
  state = nextRate(state, 1_000_000, 1000);
  assert.equal(state.rate, 1_000_000);
  for (let t = 2000; t <= 10000; t += 1000) state = nextRate(state, 1_000_000 + ((t - 1000) / 1000) * 2_000_000, t);
  assert.ok(state.rate > 1_800_000 && state.rate <= 2_000_000, String(state.rate));
  const before = state.rate;
  state = nextRate(state, state.bytes, 12000); // stalled for 2 s
  assert.ok(state.rate < before * 0.6);
});

test("eta and percent are unknown without a total or a rate, and clamped", () => {
  assert.equal(etaSeconds(10, 100, null), null);
  assert.equal(etaSeconds(10, null, 5), null);
  assert.equal(etaSeconds(10, 100, 0), null);
  assert.equal(etaSeconds(10, 100, 9), 10);
  assert.equal(percentOf(1, 3), 33.3);
  assert.equal(percentOf(5, 4), 100);
  assert.equal(percentOf(5, 0), null);
});

test("the stream counts only newer seqs and a terminal event is final", () => {
  let { stream, verdict } = applyEvent(newStream(), "import.progress", eventData(2));
  assert.equal(verdict, "new");
  assert.equal(applyEvent(stream, "import.progress", eventData(2)).verdict, "duplicate");
  assert.equal(applyEvent(stream, "import.progress", eventData(1)).verdict, "stale");
  ({ stream } = applyEvent(stream, "import.completed", completedData(3)));
  assert.equal(stream.terminal.type, "import.completed");
  assert.equal(applyEvent(stream, "import.progress", eventData(9)).verdict, "after_end");
});

test("a snapshot fills in what events lack but never rewinds them", () => {
  let { stream } = applyEvent(newStream(), "import.progress", eventData(5));
  stream = applySnapshot(stream, jobSnapshot(3));
  assert.equal(stream.view.seq, 5);
  assert.equal(stream.view.percent, 50);
  assert.equal(stream.view.image, "ceos:4.35.1F", "the image name only the snapshot knows");
  assert.equal(stream.lastSeq, 5);
  assert.equal(snapshotProgress(stream, jobSnapshot(3)), "open");
  assert.equal(snapshotProgress(stream, jobSnapshot(5, { state: "succeeded" })), "caught_up");
  assert.equal(snapshotProgress(stream, jobSnapshot(6, { state: "failed" })), "behind");
});

test("a finished snapshot stands in for its terminal event", () => {
  const result = { ref: "ceos:1", id: "sha256:" + "b".repeat(64), size: 10, tags: [] };
  const event = terminalFromSnapshot(jobSnapshot(7, { state: "succeeded", phase: "done", percent: 100, result }));
  assert.equal(event.type, "import.completed");
  assert.deepEqual(event.data.image, result);
  assert.equal(event.data.seq, 7);
});

test("a load's layer counts reach the view, and a snapshot without them keeps the last ones seen", () => {
  const loading = eventData(4, { phase: "loading", percent: 62.5, layers_done: 3, layers_total: 7, layer_bytes_done: 120e6, layer_bytes_total: 270e6 });
  let { stream } = applyEvent(newStream(), "import.progress", loading);
  assert.deepEqual(
    [stream.view.phase, stream.view.layers_done, stream.view.layers_total, stream.view.layer_bytes_done, stream.view.layer_bytes_total],
    ["loading", 3, 7, 120e6, 270e6],
  );
  stream = applySnapshot(stream, jobSnapshot(4, { phase: "loading", percent: 62.5 }));
  assert.equal(stream.view.layers_done, 3);
  ({ stream } = applyEvent(stream, "import.progress", eventData(5, { phase: "importing" })));
  assert.equal(stream.view.layers_done, null, "an event without counts clears them");
});
