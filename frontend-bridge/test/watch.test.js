// watchImport over an injected socket and fetch: seq handling, payload validation, resubscribe
// after reconnect, terminal events, the shared socket.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { createClient } from "../src/index.js";
import { FakeClock, completedData, eventData, failedData, fakeBackend, flush, jobSnapshot, socketFactoryFor } from "./support/fakes.js";
import { recorder, serveSubscribe } from "./support/watch-helpers.js";

let clock;
let sockets;
let backend;
let client;

beforeEach(() => {
  clock = new FakeClock();
  sockets = [];
  backend = fakeBackend({ jobs: { "job-1": { events: [] } } });
  client = createClient({ baseUrl: "http://backend.test", token: "t0k", fetch: backend.fetch, socketFactory: socketFactoryFor(sockets), timers: clock });
});

describe("seq handling", () => {
  test("counts each seq once and ignores duplicates and stale events", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    serveSubscribe(sockets[0]);
    sockets[0].serverConnect();
    await flush();
    for (const seq of [1, 2, 2, 3, 1, 5, 4]) sockets[0].serverSend("import.progress", eventData(seq));
    assert.deepEqual(r.seqs(), [1, 2, 3, 5]);
    assert.deepEqual(r.seen.ignored.map((e) => [e.data.seq, e.verdict]), [[2, "duplicate"], [1, "stale"], [4, "stale"]]);
    assert.equal(watch.lastSeq, 5);
    assert.equal(watch.view.percent, 50);
    watch.stop();
  });

  test("a snapshot newer than the events never moves the shown progress back", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    serveSubscribe(sockets[0], { snapshot: jobSnapshot(6) });
    sockets[0].serverConnect();
    await flush();
    assert.equal(watch.view.percent, 60);
    sockets[0].serverSend("import.progress", eventData(2)); // replayed history
    assert.equal(watch.lastSeq, 2, "history still counts for the timeline");
    assert.equal(watch.view.percent, 60, "but the bar stays at the snapshot");
    sockets[0].serverSend("import.progress", eventData(7));
    assert.equal(watch.view.percent, 70);
    watch.stop();
  });

  test("events of other jobs on the shared socket are not this watch's", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    serveSubscribe(sockets[0]);
    sockets[0].serverConnect();
    await flush();
    sockets[0].serverSend("import.progress", eventData(1, { job_id: "job-2" }));
    sockets[0].serverSend("import.progress", eventData(1));
    assert.deepEqual(r.seen.events.map((e) => e.data.job_id), ["job-1"]);
    watch.stop();
  });

  test("an operator replay of counted events is reported as replay and changes nothing", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    serveSubscribe(sockets[0]);
    sockets[0].serverConnect();
    await flush();
    for (const seq of [1, 2, 3]) sockets[0].serverSend("import.progress", eventData(seq));
    sockets[0].serverSend("import.progress", eventData(1), { replay: true });
    assert.deepEqual(r.seen.replays.map((e) => e.data.seq), [1]);
    assert.equal(watch.view.percent, 30);
    watch.stop();
  });

  test("a replayed seq this watch has not counted yet is still only a replay", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    serveSubscribe(sockets[0]);
    sockets[0].serverConnect();
    await flush();
    sockets[0].serverSend("import.progress", eventData(1));
    sockets[0].serverSend("import.completed", completedData(9), { replay: true, catchup: false, replay_id: "rpl_1" });
    assert.deepEqual(r.seen.replays.map((e) => [e.data.seq, e.meta.replay_id]), [[9, "rpl_1"]]);
    assert.equal(watch.lastSeq, 1);
    assert.equal(watch.view.state, "running");
    assert.deepEqual(r.seen.done, [], "a replayed end does not end the watch");
    sockets[0].serverSend("import.progress", eventData(2), { replay: false, catchup: true, timestamp: "2026-11-29T12:00:01Z" });
    assert.deepEqual(r.seqs(), [1, 2]);
    assert.equal(r.seen.events[1].meta.catchup, true);
    assert.equal(r.seen.events[1].meta.timestamp, "2026-11-29T12:00:01Z");
    watch.stop();
  });
});

describe("validation", () => {
  test("a payload that breaks the contract is reported and does not advance seq", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    serveSubscribe(sockets[0]);
    sockets[0].serverConnect();
    await flush();
    sockets[0].serverSend("import.progress", eventData(1));
    sockets[0].serverSend("import.progress", { ...eventData(2), percent: 140 });
    sockets[0].serverSend("import.progress", { ...eventData(3), surprise: true });
    sockets[0].serverSend("import.completed", eventData(4)); // completed without succeeded state or image
    sockets[0].serverSend("import.progress", eventData(2));
    assert.deepEqual(r.seqs(), [1, 2]);
    assert.equal(r.seen.invalid.length, 3);
    assert.ok(r.seen.invalid.every(({ err }) => err.code === "invalid_payload"));
    assert.match(r.seen.invalid[0].err.message, /percent/);
    assert.match(r.seen.invalid[1].err.message, /surprise/);
    assert.match(r.seen.invalid[2].err.message, /cannot carry state running/);
    assert.equal(r.seen.done.length, 0);
    watch.stop();
  });
});

describe("reconnect", () => {
  test("after every reconnect the watch resubscribes with the last seq it counted", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    const socket = sockets[0];
    serveSubscribe(socket);
    socket.serverConnect();
    await flush();
    for (const seq of [1, 2, 3]) socket.serverSend("import.progress", eventData(seq));
    socket.serverDrop();
    await clock.advance(1000);
    const stored = [1, 2, 3, 4, 5, 6].map((seq) => ({ type: "import.progress", data: eventData(seq) }));
    serveSubscribe(socket, { stored });
    socket.serverConnect();
    await flush();
    socket.serverDrop();
    socket.serverConnect();
    await flush();
    assert.deepEqual(socket.subscribes().map((s) => s.after_seq), [0, 3, 6]);
    assert.deepEqual(r.seqs(), [1, 2, 3, 4, 5, 6], "no gap, no duplicate");
    assert.equal(sockets.length, 1, "socket.io-client reconnects the same socket");
    assert.equal(backend.calls.length, 0, "a short drop does not fall back to polling");
    watch.stop();
  });

  test("a live event of the all-jobs feed that overtakes the resubscribe leaves no hole in the timeline", async () => {
    const r = recorder();
    const list = client.watchJobs({}); // a list view on the same socket: the feed carries job-1's events too
    const watch = client.watchImport("job-1", r.handlers);
    const socket = sockets[0];
    let heldAck = null;
    socket.onEmit = (event, payload, ack) => {
      if (event === "subscribe_all") return { ok: true, jobs: [jobSnapshot(0)] };
      if (event === "subscribe" && payload.after_seq === 0) return { ok: true, snapshot: jobSnapshot(0) };
      if (event === "subscribe") heldAck = ack; // answered below, after the feed event
      return undefined;
    };
    socket.serverConnect();
    await flush();
    for (const seq of [1, 2]) socket.serverSend("import.progress", eventData(seq), { replay: false, catchup: false });
    socket.serverDrop();
    socket.serverConnect();
    await flush();
    assert.deepEqual(socket.subscribes().map((s) => s.after_seq), [0, 2]);
    assert.ok(heldAck, "the resubscribe is in flight");

    // The server's order: the feed announced seq 5 before the subscribe reached it; then the ack,
    // the catch-up from the log (3, 4, 5), and the job's live events.
    socket.serverSend("import.progress", eventData(5), { replay: false, catchup: false });
    heldAck({ ok: true, snapshot: jobSnapshot(5) });
    for (const seq of [3, 4, 5]) socket.serverSend("import.progress", eventData(seq), { replay: false, catchup: true });
    await flush();
    socket.serverSend("import.progress", eventData(6), { replay: false, catchup: false });
    socket.serverSend("import.completed", completedData(7), { replay: false, catchup: false });

    assert.deepEqual(r.seqs(), [1, 2, 3, 4, 5, 6, 7], "every seq once, in order");
    assert.deepEqual(r.seen.ignored.map((e) => [e.data.seq, e.verdict]), [[5, "unsubscribed"]]);
    assert.equal(r.seen.done[0].type, "import.completed");
    assert.equal(backend.calls.length, 0, "no REST refill was needed");
    assert.equal(list.jobs[0].seq, 7, "the list view still follows the feed");
    list.stop();
    watch.stop();
  });

  test("a live event right behind the ack counts, even before the ack's promise settles", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers, { afterSeq: 2 });
    const socket = sockets[0];
    let heldAck = null;
    socket.onEmit = (event, payload, ack) => {
      if (event === "subscribe") heldAck = ack;
    };
    socket.serverConnect();
    await flush();
    heldAck({ ok: true, snapshot: jobSnapshot(2) }); // nothing to catch up
    socket.serverSend("import.progress", eventData(3), { replay: false, catchup: false });
    await flush();
    assert.deepEqual(r.seqs(), [3]);
    assert.equal(watch.mode, "socket");
    watch.stop();
  });

  test("over a connected socket whose subscribe timed out, feed events wait for the REST log", async () => {
    const r = recorder();
    const job = backend.jobs["job-1"];
    job.events.push({ type: "import.progress", data: eventData(1) });
    const watch = client.watchImport("job-1", r.handlers);
    const socket = sockets[0];
    socket.onEmit = () => undefined; // subscribe never answered
    socket.serverConnect();
    await clock.advance(4000);
    assert.equal(watch.mode, "polling");
    assert.deepEqual(r.seqs(), [1]);
    job.events.push(...[2, 3].map((seq) => ({ type: "import.progress", data: eventData(seq) })));
    socket.serverSend("import.progress", eventData(3), { replay: false, catchup: false }); // via the feed
    assert.deepEqual(r.seqs(), [1], "not counted ahead of 2");
    await clock.advance(1000);
    assert.deepEqual(r.seqs(), [1, 2, 3]);
    assert.ok(r.seen.events.every((e) => e.meta.via === "poll"));
    watch.stop();
  });

  test("a server-side disconnect is followed by a reconnect the client asks for", async () => {
    const watch = client.watchImport("job-1", {});
    const socket = sockets[0];
    serveSubscribe(socket);
    socket.serverConnect();
    await flush();
    socket.serverDrop("io server disconnect");
    assert.equal(socket.connectCalls, 0);
    await clock.advance(1000);
    assert.equal(socket.connectCalls, 1);
    watch.stop();
  });

  test("a refused socket (bad token) is retried slowly with the current token", async () => {
    let token = "old";
    client = createClient({ baseUrl: "http://backend.test", token: () => token, fetch: backend.fetch, socketFactory: socketFactoryFor(sockets), timers: clock });
    const watch = client.watchImport("job-1", {});
    const socket = sockets[0];
    assert.deepEqual(socket.auth, { token: "old" });
    socket.serverRefuse();
    token = "new";
    await clock.advance(4999);
    assert.equal(socket.connectCalls, 0);
    await clock.advance(1);
    assert.equal(socket.connectCalls, 1);
    assert.deepEqual(socket.auth, { token: "new" });
    watch.stop();
  });
});

describe("terminal events", () => {
  test("a terminal event ends the watch: unsubscribe, no more events, done resolves", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    const socket = sockets[0];
    serveSubscribe(socket);
    socket.serverConnect();
    await flush();
    socket.serverSend("import.progress", eventData(1));
    socket.serverSend("import.failed", failedData(2));
    socket.serverSend("import.progress", eventData(3));
    assert.deepEqual(r.seqs(), [1, 2]);
    assert.equal(r.seen.done[0].data.error.code, "corrupt_compression");
    assert.deepEqual(socket.subscribes("unsubscribe"), [{ job_id: "job-1" }]);
    assert.equal((await watch.done).type, "import.failed");
    assert.ok(socket.disconnected, "the last user of the link closes the socket");
    socket.serverDrop();
    await clock.advance(10000);
    assert.equal(backend.calls.length, 0);
  });

  test("watching a finished job replays its history, then ends", async () => {
    const r = recorder();
    const stored = [
      { type: "import.progress", data: eventData(1) },
      { type: "import.completed", data: completedData(2) },
    ];
    const watch = client.watchImport("job-1", r.handlers);
    serveSubscribe(sockets[0], { stored, snapshot: jobSnapshot(2, { state: "succeeded", phase: "done", percent: 100 }) });
    sockets[0].serverConnect();
    await flush();
    assert.deepEqual(r.seqs(), [1, 2]);
    assert.equal((await watch.done).type, "import.completed");
  });

  test("a finished snapshot whose events never come ends the watch after one REST catch-up", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers, { afterSeq: 0 });
    serveSubscribe(sockets[0], { snapshot: jobSnapshot(9, { state: "failed", phase: "importing", error: { code: "host_unreachable", message: "lab1 stopped answering" } }) });
    sockets[0].serverConnect();
    await flush();
    assert.equal(r.seen.done.length, 0);
    await clock.advance(3000);
    assert.equal(backend.pathsCalled("/api/imports/job-1/events").length, 1);
    assert.equal(r.seen.done[0].type, "import.failed");
    assert.equal(r.seen.done[0].data.error.code, "host_unreachable");
    assert.equal(await watch.done, r.seen.done[0]);
  });

  test("resubscribing to a job that ended while the socket was away ends at once", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers, { afterSeq: 4 });
    serveSubscribe(sockets[0], { snapshot: jobSnapshot(4, { state: "canceled", phase: "importing" }) });
    sockets[0].serverConnect();
    await flush();
    assert.equal(r.seen.done[0].type, "import.canceled");
    assert.equal(sockets[0].subscribes()[0].after_seq, 4);
    assert.ok(watch.done instanceof Promise);
  });
});

describe("shared link", () => {
  test("two watches of one job share the socket; the room is left when the last one ends", async () => {
    const a = client.watchImport("job-1", {});
    const b = client.watchImport("job-1", {});
    assert.equal(sockets.length, 1);
    serveSubscribe(sockets[0]);
    sockets[0].serverConnect();
    await flush();
    a.stop();
    assert.deepEqual(sockets[0].subscribes("unsubscribe"), []);
    assert.equal(sockets[0].disconnected, false);
    b.stop();
    assert.deepEqual(sockets[0].subscribes("unsubscribe"), [{ job_id: "job-1" }]);
    assert.equal(sockets[0].disconnected, true);
  });
});
