// watchImport over an injected socket and fetch: seq handling, resubscribe after reconnect,
// polling fallback and the return to the socket, terminal events, payload validation.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { createClient } from "../src/index.js";
import { FakeClock, completedData, eventData, failedData, fakeBackend, flush, jobSnapshot, socketFactoryFor } from "./support/fakes.js";

let clock;
let sockets;
let backend;
let client;

function recorder() {
  const seen = { events: [], snapshots: [], transports: [], ignored: [], invalid: [], errors: [], replays: [], done: [] };
  const handlers = {
    onEvent: (e) => seen.events.push(e),
    onSnapshot: (j) => seen.snapshots.push(j),
    onTransport: (m) => seen.transports.push(m),
    onIgnored: (e) => seen.ignored.push(e),
    onInvalid: (err, e) => seen.invalid.push({ err, e }),
    onError: (err) => seen.errors.push(err),
    onReplay: (e) => seen.replays.push(e),
    onDone: (e) => seen.done.push(e),
  };
  return { seen, handlers, seqs: () => seen.events.map((e) => e.data.seq) };
}

/** The fake server answers subscribe with the snapshot and replays the stored events after after_seq. */
function serveSubscribe(socket, { stored = [], snapshot = jobSnapshot(stored.at(-1)?.data.seq ?? 0) } = {}) {
  socket.onEmit = (event, payload) => {
    if (event !== "subscribe") return event.startsWith("un") ? { ok: true } : undefined;
    queueMicrotask(() => queueMicrotask(() => {
      for (const e of stored) if (e.data.seq > payload.after_seq) socket.serverSend(e.type, e.data, { replay: false });
    }));
    return { ok: true, snapshot };
  };
}

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

describe("polling fallback", () => {
  test("no websocket within the connect timeout: the REST log is polled, then the socket takes over again", async () => {
    const r = recorder();
    const job = backend.jobs["job-1"];
    job.events.push({ type: "import.progress", data: eventData(1) }, { type: "import.progress", data: eventData(2) });
    const watch = client.watchImport("job-1", r.handlers);
    const socket = sockets[0];
    await clock.advance(3999);
    assert.equal(backend.calls.length, 0);
    assert.equal(watch.mode, "connecting");
    await clock.advance(1);
    assert.equal(watch.mode, "polling");
    assert.deepEqual(backend.calls.map((c) => c.path + c.query), ["/api/imports/job-1", "/api/imports/job-1/events?after_seq=0"]);
    assert.equal(backend.calls[0].headers.Authorization, "Bearer t0k");
    assert.deepEqual(r.seqs(), [1, 2]);
    assert.equal(r.seen.events[0].meta.via, "poll");

    job.events.push({ type: "import.progress", data: eventData(3) });
    await clock.advance(1000);
    assert.equal(backend.calls.at(-1).query, "?after_seq=2");
    assert.deepEqual(r.seqs(), [1, 2, 3]);

    // The websocket works again: subscribe with the last seq, stop polling.
    const stored = job.events.concat([{ type: "import.progress", data: eventData(4) }]);
    serveSubscribe(socket, { stored });
    socket.serverConnect();
    await flush();
    assert.equal(watch.mode, "socket");
    assert.deepEqual(socket.subscribes().map((s) => s.after_seq), [3]);
    assert.deepEqual(r.seqs(), [1, 2, 3, 4]);
    const polled = backend.calls.length;
    await clock.advance(10000);
    assert.equal(backend.calls.length, polled, "no polling while the socket works");
    assert.deepEqual(r.seen.transports, ["connecting", "polling", "socket"]);
    watch.stop();
  });

  test("a socket that drops mid-import falls back to polling only after the timeout and finishes there", async () => {
    const r = recorder();
    const job = backend.jobs["job-1"];
    const watch = client.watchImport("job-1", r.handlers);
    const socket = sockets[0];
    serveSubscribe(socket);
    socket.serverConnect();
    await flush();
    socket.serverSend("import.progress", eventData(1));
    socket.serverSend("import.progress", eventData(2));
    socket.serverDrop();
    job.events.push(...[1, 2, 3].map((seq) => ({ type: "import.progress", data: eventData(seq) })));
    await clock.advance(4000);
    assert.equal(watch.mode, "polling");
    assert.equal(backend.pathsCalled("/api/imports/job-1/events")[0].query, "?after_seq=2");
    job.events.push({ type: "import.completed", data: completedData(4) });
    await clock.advance(1000);
    assert.deepEqual(r.seqs(), [1, 2, 3, 4]);
    assert.equal(r.seen.done.length, 1);
    assert.equal(r.seen.done[0].type, "import.completed");
    const calls = backend.calls.length;
    await clock.advance(10000);
    assert.equal(backend.calls.length, calls, "polling stops at the terminal event");
    assert.equal(await watch.done, r.seen.done[0]);
  });

  test("once the socket is known to fail, a new watch polls at once instead of waiting", async () => {
    const first = client.watchImport("job-1", {});
    sockets[0].fire("connect_error", new Error("websocket error"));
    await clock.advance(4000);
    assert.equal(first.mode, "polling");
    const before = backend.calls.length;
    const second = client.watchImport("job-1", {});
    await flush();
    assert.equal(second.mode, "polling");
    assert.ok(backend.calls.length > before, "the second watch polled without a connect timeout");
    first.stop();
    second.stop();
  });

  test("a subscribe that is never acknowledged counts as a broken socket", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    const socket = sockets[0];
    socket.onEmit = () => undefined; // a proxy that lets the handshake through and nothing else
    socket.serverConnect();
    await clock.advance(3999);
    assert.equal(watch.mode, "connecting");
    await clock.advance(1);
    assert.equal(watch.mode, "polling");
    // While polling over a connected socket, subscribe is tried again now and then.
    serveSubscribe(socket);
    await clock.advance(5000);
    assert.equal(watch.mode, "socket");
    assert.equal(socket.subscribes().length, 2);
    watch.stop();
  });

  test("polling survives a backend that is briefly unreachable, backing off", async () => {
    const r = recorder();
    backend.jobs["job-1"].events.push({ type: "import.progress", data: eventData(1) });
    const watch = client.watchImport("job-1", r.handlers);
    await clock.advance(4000);
    assert.deepEqual(r.seqs(), [1]);
    backend.failNext = 2;
    await clock.advance(1000); // fails
    await clock.advance(2000); // fails, next wait 4 s
    assert.equal(r.seen.errors.length, 2);
    assert.ok(r.seen.errors.every((e) => e.code === "network_error"));
    backend.jobs["job-1"].events.push({ type: "import.progress", data: eventData(2) });
    await clock.advance(3999);
    assert.deepEqual(r.seqs(), [1]);
    await clock.advance(1);
    assert.deepEqual(r.seqs(), [1, 2]);
    watch.stop();
  });

  test("an unknown job stops the watch with not_found", async () => {
    const r = recorder();
    const watch = client.watchImport("nope", r.handlers);
    await clock.advance(4000);
    assert.equal(r.seen.errors[0].code, "not_found");
    assert.equal(await watch.done, null);
    const calls = backend.calls.length;
    await clock.advance(10000);
    assert.equal(backend.calls.length, calls);
  });

  test("a refused subscribe (forbidden) stops the watch", async () => {
    const r = recorder();
    const watch = client.watchImport("job-1", r.handlers);
    sockets[0].onEmit = (event) => (event === "subscribe" ? { ok: false, error: { code: "forbidden", message: "not yours" } } : undefined);
    sockets[0].serverConnect();
    await flush();
    assert.equal(r.seen.errors[0].code, "forbidden");
    assert.equal(await watch.done, null);
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
