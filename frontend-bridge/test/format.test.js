// What the page writes for numbers, times and job states.
import assert from "node:assert/strict";
import { test } from "node:test";

import { formatAgo, formatBytes, formatBytesOf, formatDelay, formatDuration, formatPercent, formatRate, hostLiveness, jobName, jobStatusLine, shortId } from "../web/format.js";

test("sizes and rates use binary units with sensible precision", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.50 KiB");
  assert.equal(formatBytes(600 * 1024 * 1024), "600 MiB");
  assert.equal(formatBytes(2.6 * 1024 ** 3), "2.60 GiB");
  assert.equal(formatBytes(null), "–");
  assert.equal(formatRate(48.25 * 1024 * 1024), "48.3 MiB/s");
});

test("durations, delays and percentages", () => {
  assert.equal(formatDuration(12.4), "12 s");
  assert.equal(formatDuration(185), "3 min 05 s");
  assert.equal(formatDuration(7440), "2 h 04 min");
  assert.equal(formatDuration(null), "–");
  assert.equal(formatDelay(250), "+250 ms");
  assert.equal(formatDelay(1250), "+1.25 s");
  assert.equal(formatDelay(null), "");
  assert.equal(formatPercent(99.99), "99.9 %", "never rounds up to a 100 that is not there");
  assert.equal(formatAgo(new Date(9000), 21000), "12 s ago");
  assert.equal(formatAgo(new Date(9000), 11000), "just now");
  assert.equal(formatAgo(null), "never");
  assert.equal(shortId("sha256:0123456789abcdef0123"), "0123456789ab");
});

test("a job's status line says what is happening", () => {
  const base = { state: "running", phase: "importing", bytes_done: 1024 ** 3, bytes_total: 2 * 1024 ** 3, rate_bps: 50 * 1024 ** 2, eta_s: 20 };
  assert.equal(jobStatusLine(base), "1.00 GiB of 2.00 GiB · 50.0 MiB/s · 20 s left");
  assert.equal(jobStatusLine({ ...base, phase: "finalizing", phase_elapsed_s: 3 }, 12), "Finalizing… 12 s");
  const loading = { ...base, phase: "loading", rate_bps: 40 * 1024 ** 2, eta_s: 4, layers_done: 3, layers_total: 7, layer_bytes_done: 120 * 1024 ** 2, layer_bytes_total: 270 * 1024 ** 2 };
  assert.equal(jobStatusLine(loading), "Loading layers 3/7 · 120 MiB of 270 MiB · 40.0 MiB/s · 4 s left");
  assert.equal(jobStatusLine({ ...loading, layers_total: null, layer_bytes_total: null, eta_s: null }), "Loading layers 3 · 40.0 MiB/s");
  assert.equal(jobStatusLine(loading, null, 9), "Loading layers 3/7 · 120 MiB of 270 MiB · no update for 9 s");
  assert.equal(jobStatusLine({ ...base, state: "queued", phase: "queued", queue_position: 2 }), "Queued · position 2");
  const waiting = { ...base, phase: "waiting_for_upload", bytes_available: 0.9 * 1024 ** 3, rate_bps: null, eta_s: null };
  assert.equal(jobStatusLine(waiting), "Waiting for upload · 45 % uploaded (922 MiB of 2.00 GiB) · 1.00 GiB of 2.00 GiB imported");
  assert.equal(jobStatusLine({ ...waiting, bytes_available: null }), "Waiting for upload · upload still arriving · 1.00 GiB of 2.00 GiB imported");
  assert.equal(
    jobStatusLine({ ...base, state: "succeeded", result: { ref: "ceos:1", id: "sha256:" + "c".repeat(64), size: 2.6 * 1024 ** 3 } }),
    "Imported ceos:1 · cccccccccccc · 2.60 GiB",
  );
  assert.equal(
    jobStatusLine({ ...base, state: "succeeded", result: { ref: "ceos:1", id: "sha256:" + "c".repeat(64), size: 5, tags: [], already_present: true } }),
    "Already present — nothing imported · ceos:1 · cccccccccccc",
  );
  assert.equal(jobStatusLine({ ...base, state: "failed", error: { code: "insufficient_disk", message: "lab1 has 1 GiB free, needs 3 GiB" } }), "Failed: lab1 has 1 GiB free, needs 3 GiB (insufficient_disk)");
  assert.equal(jobStatusLine({ ...base, bytes_total: null, rate_bps: null, eta_s: null }), "1.00 GiB");
});

test("a running job that has been silent says so instead of a stale rate and ETA", () => {
  const base = { state: "running", phase: "importing", bytes_done: 1024 ** 3, bytes_total: 2 * 1024 ** 3, rate_bps: 50 * 1024 ** 2, eta_s: 20 };
  assert.equal(jobStatusLine(base, null, 4.9), "1.00 GiB of 2.00 GiB · 50.0 MiB/s · 20 s left", "a short pause is normal");
  assert.equal(jobStatusLine(base, null, 12.2), "1.00 GiB of 2.00 GiB · no update for 12 s");
  assert.equal(jobStatusLine({ ...base, phase: "finalizing" }, 30, 7), "Finalizing… 30 s · no update for 7 s");
  assert.equal(jobStatusLine({ ...base, state: "queued", phase: "queued" }, null, 60), "Queued", "a queue may be quiet");
  assert.equal(jobStatusLine({ ...base, state: "failed", error: { code: "x", message: "m" } }, null, 60), "Failed: m (x)");
});

test("a job is named by the image it made, else the one asked for, never by the backend's 'unknown'", () => {
  assert.equal(jobName({ id: "j1", image: "ceos:1" }), "ceos:1");
  assert.equal(jobName({ id: "j1", image: "ceos:1", result: { ref: "ceos:2", tags: ["ceos:2"] } }), "ceos:2");
  // Known only from callbacks: the backend says "unknown" until the completion names the image.
  assert.equal(jobName({ id: "job-7f3a", image: "unknown" }), "job job-7f3a");
  assert.equal(jobName({ id: "job-7f3a", image: "unknown", result: null }), "job job-7f3a");
  assert.equal(jobName({ id: "job-7f3a", image: "unknown", result: { ref: "srlinux:24.10", tags: [] } }), "srlinux:24.10");
  assert.equal(jobName({ id: "job-7f3a", image: "unknown", result: { ref: "unknown", tags: ["vendor/os:1"] } }), "vendor/os:1");
  assert.equal(jobName({ id: "job-7f3a", image: "" }), "job job-7f3a");
  assert.equal(jobName(null), "job ?");
});

test("a silent host reads as a doubt with its duration, never as online beside an old last-seen", () => {
  const now = Date.parse("2026-11-29T12:01:00Z");
  assert.deepEqual(hostLiveness({ alive: true, last_seen: "2026-11-29T12:00:55Z" }, now), { words: "online", tone: "ok" });
  assert.deepEqual(hostLiveness({ alive: true, last_seen: "2026-11-29T12:00:02Z" }, now), { words: "silent for 58 s", tone: "warn" });
  assert.deepEqual(hostLiveness({ alive: false, last_seen: "2026-11-29T11:58:00Z" }, now), { words: "silent for 3 min 00 s", tone: "bad" });
  assert.deepEqual(hostLiveness({ alive: false, last_seen: null }, now), { words: "never heard from", tone: "bad" });
});

test("a job whose host is silent says so in the backend's words, and a presumed failure says it may be replaced", () => {
  const view = { state: "running", phase: "importing", host: "lab1", bytes_done: 1024, bytes_total: 4096, rate_bps: 10, eta_s: 3,
    doubt: { code: "host_silent", host: "lab1", silent_s: 40 } };
  assert.equal(jobStatusLine(view), "1.00 KiB of 4.00 KiB · no word from lab1 for 40 s");
  assert.equal(jobStatusLine(view, null, 2, 44.2), "1.00 KiB of 4.00 KiB · no word from lab1 for 44 s");
  const presumed = { state: "failed", host: "lab1", presumed: true, error: { code: "host_unreachable", message: "no word from host 'lab1' for 900 s" } };
  assert.equal(jobStatusLine(presumed), "Failed: no word from host 'lab1' for 900 s (host_unreachable) · presumed: a later report from lab1 replaces it");
});

test("a part and its whole read in the whole's unit", () => {
  const MiB = 1024 ** 2;
  assert.equal(formatBytesOf(122 * MiB, 451 * MiB), "122 of 451 MiB");
  assert.equal(formatBytesOf(2 * MiB, 32 * MiB), "2.0 of 32.0 MiB");
  assert.equal(formatBytesOf(0, 1.5 * 1024 * MiB), "0.00 of 1.50 GiB");
  assert.equal(formatBytesOf(300, 1000), "300 of 1000 B");
});
