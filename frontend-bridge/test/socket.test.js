// The client with the real socket.io-client against a real Socket.IO server (the stand-in
// backend): reconnects after a server-side disconnect and after a server restart, resubscribing
// with the last seq; REST polling when websocket upgrades are refused or starved; a refused token.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import net from "node:net";
import { afterEach, beforeEach, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { createStandInBackend } from "../dev/stand-in-backend.mjs";
import { SocketLink, createClient, defaultSocketFactory } from "../src/index.js";
import { completedData, eventData } from "./support/fakes.js";

const TOKEN = "operator-token";
let backend;
let origin;
let client;

const fastSocket = (url, options) => defaultSocketFactory(url, { ...options, reconnectionDelay: 100, reconnectionDelayMax: 300 });

function makeClient(token = TOKEN) {
  return createClient({
    baseUrl: origin,
    token,
    socketFactory: fastSocket,
    reconnectDelayMs: 100,
    watch: { connectTimeoutMs: 800, ackTimeoutMs: 800, pollIntervalMs: 100, catchUpMs: 300 },
  });
}

async function until(condition, what, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function record() {
  const seen = { seqs: [], transports: [], errors: [], done: [] };
  return {
    seen,
    handlers: {
      onEvent: (e) => seen.seqs.push(e.data.seq),
      onTransport: (m) => seen.transports.push(m),
      onError: (e) => seen.errors.push(e),
      onDone: (e) => seen.done.push(e),
    },
  };
}

beforeEach(async () => {
  backend = createStandInBackend();
  backend.addJob({ id: "job-1", image: "ceos:4.35.1F", bytes_total: 1000 });
  origin = await backend.listen();
});

afterEach(async () => {
  client?.close();
  await backend.close();
});

test("live events flow, and a server-side disconnect is recovered with a resubscribe from the last seq", async () => {
  client = makeClient();
  const r = record();
  const watch = client.watchImport("job-1", r.handlers);
  await until(() => watch.mode === "socket", "socket mode");
  backend.publish("job-1", "import.progress", eventData(1));
  backend.publish("job-1", "import.progress", eventData(2));
  await until(() => r.seen.seqs.length === 2, "two events");

  backend.io.disconnectSockets(); // what a backend does on a clean shutdown
  await until(() => watch.mode === "connecting", "the drop to be seen");
  backend.publish("job-1", "import.progress", eventData(3)); // while the client is away
  await until(() => watch.mode === "socket", "the reconnect");
  backend.publish("job-1", "import.completed", completedData(4));
  assert.equal((await watch.done).type, "import.completed");
  assert.deepEqual(r.seen.seqs, [1, 2, 3, 4]);
  assert.deepEqual(r.seen.transports, ["connecting", "socket", "connecting", "socket"]);
});

test("a backend restart mid-import: the client comes back by itself and misses nothing", async () => {
  client = makeClient();
  const r = record();
  const watch = client.watchImport("job-1", r.handlers, { connectTimeoutMs: 10000 });
  await until(() => watch.mode === "socket", "socket mode");
  backend.publish("job-1", "import.progress", eventData(1));
  await until(() => r.seen.seqs.length === 1, "first event");
  await backend.close();
  backend.publish("job-1", "import.progress", eventData(2)); // stored while nobody listens
  backend.publish("job-1", "import.progress", eventData(3));
  await sleep(300);
  await backend.listen();
  await until(() => r.seen.seqs.length === 3, "the replayed events");
  backend.publish("job-1", "import.completed", completedData(4));
  await watch.done;
  assert.deepEqual(r.seen.seqs, [1, 2, 3, 4]);
  assert.ok(!r.seen.transports.includes("polling"));
});

test("websocket upgrades refused (a proxy that breaks them): polling finishes the job", async () => {
  backend.blockWebsocket = true;
  client = makeClient();
  const r = record();
  const watch = client.watchImport("job-1", r.handlers);
  backend.publish("job-1", "import.progress", eventData(1));
  await until(() => watch.mode === "polling", "polling mode");
  await until(() => r.seen.seqs.length === 1, "the polled event");
  backend.publish("job-1", "import.progress", eventData(2));
  backend.publish("job-1", "import.completed", completedData(3));
  assert.equal((await watch.done).type, "import.completed");
  assert.deepEqual(r.seen.seqs, [1, 2, 3]);
});

test("the socket takes over from polling as soon as upgrades work again", async () => {
  backend.blockWebsocket = true;
  client = makeClient();
  const r = record();
  const watch = client.watchImport("job-1", r.handlers);
  await until(() => watch.mode === "polling", "polling mode");
  backend.publish("job-1", "import.progress", eventData(1));
  await until(() => r.seen.seqs.length === 1, "a polled event");
  backend.blockWebsocket = false;
  await until(() => watch.mode === "socket", "socket mode", 8000);
  backend.publish("job-1", "import.progress", eventData(2));
  backend.publish("job-1", "import.completed", completedData(3));
  await watch.done;
  assert.deepEqual(r.seen.seqs, [1, 2, 3]);
  assert.deepEqual(r.seen.transports, ["connecting", "polling", "socket"]);
});

test("a token the backend does not know: the watch stops with unauthorized", async () => {
  client = makeClient("nope");
  const r = record();
  const watch = client.watchImport("job-1", r.handlers);
  assert.equal(await watch.done, null);
  assert.ok(r.seen.errors.some((e) => e.code === "unauthorized"));
});

test("an upgrade a proxy accepts and then starves is given up and retried, not waited on for 20 s", async () => {
  // A real TCP server that completes the websocket handshake and then sends nothing at all.
  const attempts = [];
  const silent = net.createServer((conn) => {
    conn.once("data", (head) => {
      attempts.push(Date.now());
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head.toString())?.[1] ?? "";
      const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
      conn.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    });
    conn.on("error", () => {});
  });
  await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const errors = [];
  const link = new SocketLink({ url: `http://127.0.0.1:${silent.address().port}`, token: TOKEN, socketFactory: fastSocket, handshakeTimeoutMs: 300 });
  link.onStatus((status, detail) => status === "error" && errors.push(detail));
  try {
    link.acquire();
    await until(() => attempts.length >= 2, "a second attempt", 3000);
    assert.ok(attempts[1] - attempts[0] < 1500, `retried after ${attempts[1] - attempts[0]} ms`);
    assert.equal(errors[0]?.code, "connect_failed");
  } finally {
    link.close();
    silent.close();
  }
});
