// The REST client: bearer token, paths and queries, and errors turned into stable codes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createApi } from "../src/api.js";
import { createClient } from "../src/index.js";
import { FerryError } from "../src/errors.js";
import { json } from "./support/fakes.js";

function recordingFetch(respond) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, ...init });
    return respond(url, init);
  };
  return { calls, fetch };
}

test("requests carry the bearer token and encode ids and queries", async () => {
  const { calls, fetch } = recordingFetch(() => json(200, { jobs: [] }));
  const api = createApi({ baseUrl: "https://ferry.lab/", token: () => "s3cret", fetch });
  await api.listImports({ state: "running", host: "lab 1" });
  await api.getEvents("job/1", 7);
  await api.listImports();
  assert.equal(calls[0].url, "https://ferry.lab/api/imports?state=running&host=lab%201");
  assert.equal(calls[0].headers.Authorization, "Bearer s3cret");
  assert.equal(calls[1].url, "https://ferry.lab/api/imports/job%2F1/events?after_seq=7");
  assert.equal(calls[2].url, "https://ferry.lab/api/imports");
});

test("a backend error body keeps its own code and message", async () => {
  const { fetch } = recordingFetch(() => json(409, { error: { code: "image_exists", message: "ceos:1 exists on lab1" } }));
  const api = createApi({ token: "t", fetch });
  await assert.rejects(api.getImport("x"), (e) => e instanceof FerryError && e.code === "image_exists" && e.status === 409 && e.message === "ceos:1 exists on lab1");
});

test("errors without a body get a code from their status", async () => {
  for (const [status, code] of [[401, "unauthorized"], [403, "forbidden"], [404, "not_found"], [502, "server_error"], [418, "http_418"]]) {
    const api = createApi({ token: "t", fetch: async () => new Response("", { status }) });
    await assert.rejects(api.me(), (e) => e.code === code && e.status === status, `HTTP ${status}`);
  }
});

test("an unreachable backend is network_error, an abort stays an abort", async () => {
  const api = createApi({ token: "t", fetch: async () => { throw new TypeError("fetch failed"); } });
  await assert.rejects(api.hosts(), (e) => e.code === "network_error" && e.cause instanceof TypeError);
  const controller = new AbortController();
  controller.abort();
  const aborting = createApi({ token: "t", fetch: async (url, init) => { init.signal.throwIfAborted(); } });
  await assert.rejects(aborting.hosts({ signal: controller.signal }), (e) => e.name === "AbortError");
});

test("startImport checks its input before asking the backend and sends the agreed body", async () => {
  const { calls, fetch } = recordingFetch(() => json(202, { jobs: [{ id: "j1", host: "lab1" }, { id: "j2", host: "lab2" }] }));
  const client = createClient({ token: "t", fetch, socketFactory: () => { throw new Error("no socket needed"); } });
  await assert.rejects(client.startImport({ uploadId: "u1", hosts: ["lab1"], image: "Bad:Name" }), (e) => e.code === "invalid_reference");
  await assert.rejects(client.startImport({ uploadId: "u1", hosts: [], image: "ceos" }), (e) => e.code === "invalid_request");
  await assert.rejects(client.startImport({ hosts: ["lab1"], image: "ceos" }), (e) => e.code === "invalid_request");
  assert.equal(calls.length, 0);
  const jobs = await client.startImport({ uploadId: "u1", hosts: ["lab1", "lab2"], image: "ceos:4.35.1F", changes: ["CMD /sbin/init"] });
  assert.deepEqual(jobs.map((j) => j.id), ["j1", "j2"]);
  assert.equal(calls[0].method, "POST");
  assert.deepEqual(JSON.parse(calls[0].body), { hosts: ["lab1", "lab2"], image: "ceos:4.35.1F", upload_id: "u1", changes: ["CMD /sbin/init"] });
});

test("startImport sends no image for a docker-save archive and refuses none for a file system import", async () => {
  const { calls, fetch } = recordingFetch(() => json(202, { jobs: [{ id: "j1", host: "lab1" }] }));
  const client = createClient({ token: "t", fetch, socketFactory: () => { throw new Error("no socket needed"); } });
  await assert.rejects(client.startImport({ uploadId: "u1", hosts: ["lab1"], format: "import" }), (e) => e.code === "invalid_reference");
  assert.equal(calls.length, 0);
  await client.startImport({ uploadId: "u1", hosts: ["lab1"] });
  assert.deepEqual(JSON.parse(calls[0].body), { hosts: ["lab1"], upload_id: "u1" });
});

test("the replay, deliveries and image removal endpoints are detected from the backend's OpenAPI document", async () => {
  const withRemoval = createApi({ token: "t", fetch: async () => json(200, { paths: { "/api/images": {}, "/api/images/{host}/{image_id}": {} } }) });
  assert.deepEqual(await withRemoval.capabilities(), { replay: false, deliveries: false, removeImage: true });
  const withReplay = createApi({ token: "t", fetch: async () => json(200, { paths: { "/api/imports/{job_id}/replay": {} } }) });
  const withBoth = createApi({ token: "t", fetch: async () => json(200, { paths: { "/api/imports/{job_id}/replay": {}, "/api/imports/{job_id}/deliveries": {} } }) });
  const without = createApi({ token: "t", fetch: async () => json(200, { paths: { "/api/imports/{job_id}": {}, "/api/imports/{job_id}/replay/x": {} } }) });
  const hidden = createApi({ token: "t", fetch: async () => new Response("", { status: 404 }) });
  assert.deepEqual(await withReplay.capabilities(), { replay: true, deliveries: false, removeImage: false });
  assert.deepEqual(await withBoth.capabilities(), { replay: true, deliveries: true, removeImage: false });
  assert.deepEqual(await without.capabilities(), { replay: false, deliveries: false, removeImage: false });
  assert.deepEqual(await hidden.capabilities(), { replay: false, deliveries: false, removeImage: false });
});

test("reachability follows the last answer: a network failure or a gateway's 502/503/504 is down", async () => {
  let answer = () => json(200, { role: "viewer" });
  const api = createApi({ token: "t", fetch: async () => answer() });
  const changes = [];
  api.onReachability((ok) => changes.push(ok));
  await api.me();
  assert.equal(api.reachable, true);
  answer = () => { throw new TypeError("fetch failed"); };
  await assert.rejects(api.me());
  assert.equal(api.reachable, false);
  answer = () => new Response("", { status: 502 });
  await assert.rejects(api.me());
  answer = () => json(404, { error: { code: "not_found", message: "no" } });
  await assert.rejects(api.me());
  assert.equal(api.reachable, true, "an error from the backend itself means it is there");
  assert.deepEqual(changes, [false, true], "listeners hear changes only");
});
