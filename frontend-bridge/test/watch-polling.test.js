// watchImport's polling fallback: the REST log when the websocket does not connect, and the
// return to the socket as soon as it does.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { createClient } from "../src/index.js";
import { FakeClock, completedData, eventData, fakeBackend, flush, socketFactoryFor } from "./support/fakes.js";
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
    assert.equal(r.seen.events[0].meta.timestamp, "2026-11-29T10:00:09Z", "the backend's receipt time, as on the socket");

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

