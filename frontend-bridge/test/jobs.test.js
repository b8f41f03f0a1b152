// watchJobs: the live list of jobs over subscribe_all, with polling when there is no socket.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { createClient } from "../src/index.js";
import { FakeClock, completedData, eventData, fakeBackend, flush, jobSnapshot, socketFactoryFor } from "./support/fakes.js";

let clock;
let sockets;
let backend;
let client;

beforeEach(() => {
  clock = new FakeClock();
  sockets = [];
  backend = fakeBackend({
    jobs: {
      "job-1": { events: [{ type: "import.progress", data: eventData(2) }] },
      "job-2": { events: [{ type: "import.progress", data: eventData(1, { job_id: "job-2", host: "lab2" }) }] },
    },
  });
  client = createClient({ token: "t", fetch: backend.fetch, socketFactory: socketFactoryFor(sockets), timers: clock });
});

function record() {
  const seen = { lists: [], rows: [], events: [], replays: [], transports: [] };
  return {
    seen,
    handlers: {
      onJobs: (list) => seen.lists.push(list),
      onJob: (row) => seen.rows.push(row),
      onEvent: (e) => seen.events.push(e),
      onReplay: (e) => seen.replays.push(e),
      onTransport: (m) => seen.transports.push(m),
    },
  };
}

test("subscribe_all loads the list and every job's events update their row, newest seq winning", async () => {
  const r = record();
  const watch = client.watchJobs(r.handlers);
  const socket = sockets[0];
  socket.onEmit = (event) => (event === "subscribe_all" ? { ok: true, jobs: [jobSnapshot(2), jobSnapshot(1, { id: "job-2", host: "lab2", created_at: "2026-11-29T11:00:00Z" })] } : undefined);
  socket.serverConnect();
  await flush();
  assert.deepEqual(r.seen.lists[0].map((j) => j.id), ["job-2", "job-1"], "newest first");
  socket.serverSend("import.progress", eventData(3));
  socket.serverSend("import.progress", eventData(2)); // stale: the jobs room and the job room both deliver
  socket.serverSend("import.progress", eventData(1, { job_id: "job-2", host: "lab2" }));
  socket.serverSend("import.completed", completedData(4));
  assert.deepEqual(r.seen.events.map((e) => [e.data.job_id, e.data.seq]), [["job-1", 3], ["job-1", 4]]);
  const row = watch.jobs.find((j) => j.id === "job-1");
  assert.equal(row.state, "succeeded");
  assert.equal(row.image, "ceos:4.35.1F");
  socket.serverSend("import.progress", eventData(2), { replay: true });
  assert.equal(r.seen.replays.length, 1);
  assert.equal(watch.jobs.find((j) => j.id === "job-1").state, "succeeded");
  socket.serverSend("import.progress", eventData(5, { job_id: "job-2", host: "lab2" }), { replay: true, replay_id: "rpl_2" });
  assert.equal(r.seen.replays.length, 2);
  assert.equal(watch.jobs.find((j) => j.id === "job-2").seq, 1, "a replay never moves a row, even to a newer seq");
  watch.stop();
  assert.deepEqual(socket.subscribes("unsubscribe_all"), [{}]);
});

test("a job first seen through an event gets its name and times fetched", async () => {
  const r = record();
  const watch = client.watchJobs(r.handlers);
  sockets[0].onEmit = (event) => (event === "subscribe_all" ? { ok: true, jobs: [] } : undefined);
  sockets[0].serverConnect();
  await flush();
  backend.jobs["job-3"] = { events: [{ type: "import.progress", data: eventData(1, { job_id: "job-3" }) }] };
  sockets[0].serverSend("import.queued", eventData(1, { job_id: "job-3", state: "queued", phase: "queued" }));
  await flush();
  assert.equal(r.seen.rows.at(-1).image, "ceos:4.35.1F");
  assert.deepEqual(backend.calls.map((c) => c.path), ["/api/imports/job-3"]);
  watch.stop();
});

test("without a websocket the list is polled, and the socket takes over when it works", async () => {
  const r = record();
  const watch = client.watchJobs(r.handlers);
  await clock.advance(4000);
  assert.equal(watch.mode, "polling");
  assert.deepEqual(backend.pathsCalled("/api/imports").length, 1);
  backend.jobs["job-1"].events.push({ type: "import.progress", data: eventData(5) });
  await clock.advance(3000);
  assert.equal(watch.jobs.find((j) => j.id === "job-1").percent, 50);
  sockets[0].onEmit = (event) => (event === "subscribe_all" ? { ok: true, jobs: [] } : undefined);
  sockets[0].serverConnect();
  await flush();
  assert.equal(watch.mode, "socket");
  const calls = backend.calls.length;
  await clock.advance(30000);
  assert.equal(backend.calls.length, calls);
  assert.deepEqual(r.seen.transports, ["connecting", "polling", "socket"]);
  watch.stop();
});

test("a silent host's doubt and a presumed failure come as notices, and the host's next event still moves the row", async () => {
  const r = record();
  const watch = client.watchJobs(r.handlers);
  const socket = sockets[0];
  socket.onEmit = (event) => (event === "subscribe_all" ? { ok: true, jobs: [jobSnapshot(2)] } : undefined);
  socket.serverConnect();
  await flush();
  const doubt = { code: "host_silent", host: "lab1", since: "2026-11-29T12:00:00Z", silent_s: 40, message: "no word from lab1 for 40 s" };
  socket.serverSend("job.snapshot", jobSnapshot(2, { doubt }), { notice: true });
  let row = watch.jobs.find((j) => j.id === "job-1");
  assert.equal(row.state, "running");
  assert.deepEqual(row.doubt, doubt);
  const error = { code: "host_unreachable", message: "no word from host 'lab1' for 900 s", detail: null };
  socket.serverSend("job.snapshot", jobSnapshot(2, { state: "failed", error, presumed: true, doubt }), { notice: true });
  row = watch.jobs.find((j) => j.id === "job-1");
  assert.equal(row.state, "failed");
  assert.equal(row.presumed, true);
  assert.equal(r.seen.events.length, 0, "a notice is never an event");
  socket.serverSend("import.progress", eventData(3));
  socket.serverSend("import.completed", completedData(4));
  row = watch.jobs.find((j) => j.id === "job-1");
  assert.deepEqual([row.state, row.presumed, row.doubt, row.seq], ["succeeded", false, null, 4], "the host's word replaces the presumption");
  assert.deepEqual(r.seen.events.map((e) => e.data.seq), [3, 4]);
  socket.serverSend("job.snapshot", jobSnapshot(4, { state: "failed", error, presumed: true }), { notice: true });
  assert.equal(watch.jobs.find((j) => j.id === "job-1").state, "succeeded", "a job that ended for good stays ended");
  watch.stop();
});
