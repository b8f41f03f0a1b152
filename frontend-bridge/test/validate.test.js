// Payloads are checked against the contract's JSON Schema, compiled at build time.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { checkEventData, checkImportEvent } from "../src/validate.js";
import { completedData, eventData, failedData } from "./support/fakes.js";

test("the validator was compiled from the schema the contract exports", () => {
  const schema = JSON.parse(readFileSync(new URL("../schema/callback.schema.json", import.meta.url), "utf8"));
  const generated = readFileSync(new URL("../src/generated/callback-validator.cjs", import.meta.url), "utf8");
  for (const field of Object.keys(schema.$defs.ImportEventData.properties)) assert.ok(generated.includes(`"${field}"`), field);
});

test("every import event type with a fitting payload is accepted", () => {
  assert.deepEqual(checkImportEvent("import.queued", eventData(1, { state: "queued", phase: "queued", queue_position: 2 })), { ok: true });
  assert.deepEqual(checkImportEvent("import.progress", eventData(2)), { ok: true });
  assert.deepEqual(checkImportEvent("import.progress", eventData(2, { phase: "finalizing", phase_elapsed_s: 12.5, eta_s: null })), { ok: true });
  assert.deepEqual(checkImportEvent("import.completed", completedData(3)), { ok: true });
  assert.deepEqual(checkImportEvent("import.failed", failedData(3)), { ok: true });
  assert.deepEqual(checkImportEvent("import.canceled", eventData(3, { state: "canceled" })), { ok: true });
});

test("a stored event with its timestamp is accepted, a malformed timestamp is not", () => {
  assert.equal(checkImportEvent("import.progress", eventData(1), "2026-11-29T10:00:00.123456+00:00").ok, true);
  assert.equal(checkImportEvent("import.progress", eventData(1), "yesterday").ok, false);
});

test("payloads that break the contract are refused with the field named", () => {
  const cases = [
    [eventData(0), /seq/],
    [{ ...eventData(1), percent: -1 }, /percent/],
    [{ ...eventData(1), state: "exploded" }, /state/],
    [{ ...eventData(1), phase: "brewing" }, /phase/],
    [{ ...eventData(1), bytes_done: 1.5 }, /bytes_done/],
    [{ ...eventData(1), extra: 1 }, /extra/],
    [(({ host: _host, ...rest }) => rest)(eventData(1)), /host/],
    [{ ...eventData(1), job_id: "" }, /job_id/],
  ];
  for (const [data, pattern] of cases) {
    const verdict = checkImportEvent("import.progress", data);
    assert.equal(verdict.ok, false, JSON.stringify(data));
    assert.match(verdict.message, pattern);
  }
});

test("type and state must agree, and terminal events carry their result", () => {
  assert.match(checkImportEvent("import.progress", completedData(2)).message, /cannot carry state succeeded/);
  assert.match(checkImportEvent("import.completed", { ...completedData(2), image: null }).message, /needs image/);
  assert.match(checkImportEvent("import.failed", eventData(2, { state: "failed" })).message, /needs error/);
  assert.match(checkImportEvent("import.failed", failedData(2, { error: { code: "Bad Code", message: "x" } })).message, /code/);
});

test("heartbeats and unknown types are not import events", () => {
  assert.equal(checkImportEvent("importer.heartbeat", { host: "lab1", seq: 1 }).ok, false);
  assert.equal(checkImportEvent("import.exploded", eventData(1)).ok, false);
});

test("event data can be checked on its own", () => {
  assert.equal(checkEventData(eventData(1)).ok, true);
  assert.equal(checkEventData({ seq: 1 }).ok, false);
});
