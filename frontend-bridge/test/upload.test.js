// Uploads through tus-js-client against a real tus server (@tus/server), including a connection
// cut in the middle of the body, after which the upload resumes from the server's offset.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { FileStore } from "@tus/file-store";
import { Server } from "@tus/server";

import { storedUploads, upload, uploadIdFromUrl } from "../src/upload.js";

const TOKEN = "operator-token";
let dir;
let server;
let origin;
const requests = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "ferry-upload-test-"));
  const tus = new Server({ path: "/api/uploads", datastore: new FileStore({ directory: dir }) });
  server = http.createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, offset: req.headers["upload-offset"], auth: req.headers.authorization });
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: { code: "unauthorized", message: "missing or unknown token" } }));
      return;
    }
    tus.handle(req, res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** A TCP proxy to the server that cuts its first connection after `cutAfter` bytes from the client. */
async function cuttingProxy(cutAfter) {
  let cut = false;
  const proxy = net.createServer((client) => {
    const upstream = net.connect(server.address().port, "127.0.0.1");
    let sent = 0;
    let dead = false;
    const cutThis = !cut;
    client.on("data", (chunk) => {
      if (dead) return;
      sent += chunk.length;
      if (cutThis && !cut && sent > cutAfter) {
        cut = true;
        dead = true;
        upstream.write(chunk.subarray(0, chunk.length - (sent - cutAfter)));
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
        }, 20);
        return;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.end());
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return { proxy, origin: `http://127.0.0.1:${proxy.address().port}`, wasCut: () => cut };
}

test("an upload completes, reports growing progress and yields the id from its URL", async () => {
  requests.length = 0;
  const body = randomBytes(700 * 1024);
  const progress = [];
  const result = await upload(body, {
    baseUrl: origin,
    token: TOKEN,
    metadata: { filename: "ceos.tar.xz" },
    chunkSize: 256 * 1024,
    retryDelays: [0],
    onProgress: (p) => progress.push(p),
  });
  assert.equal(result.uploadId, uploadIdFromUrl(result.url));
  assert.equal(result.size, body.length);
  assert.deepEqual(readFileSync(join(dir, result.uploadId)), body);
  assert.ok(progress.length >= 3);
  for (let i = 1; i < progress.length; i += 1) assert.ok(progress[i].bytesSent >= progress[i - 1].bytesSent);
  assert.equal(progress.at(-1).bytesSent, body.length);
  assert.equal(progress.at(-1).percent, 100);
  assert.ok(requests.every((r) => r.auth === `Bearer ${TOKEN}`));
  assert.deepEqual(requests.map((r) => r.method), ["POST", "PATCH", "PATCH", "PATCH"]);
});

test("a connection cut mid-body is resumed from the server's offset and the file arrives whole", async () => {
  requests.length = 0;
  const { proxy, origin: viaProxy, wasCut } = await cuttingProxy(600 * 1024);
  try {
    const body = randomBytes(1024 * 1024);
    const result = await upload(body, { baseUrl: viaProxy, token: TOKEN, chunkSize: 256 * 1024, retryDelays: [0, 50, 100] });
    assert.ok(wasCut(), "the proxy cut a connection");
    assert.deepEqual(readFileSync(join(dir, result.uploadId)), body);
    const heads = requests.filter((r) => r.method === "HEAD");
    assert.equal(heads.length, 1, "the client asked the server for its offset once");
    const patches = requests.filter((r) => r.method === "PATCH").map((r) => Number(r.offset));
    assert.ok(patches.length >= 4);
    for (let i = 1; i < patches.length; i += 1) assert.ok(patches[i] >= patches[i - 1], `offsets never go back: ${patches}`);
    assert.ok(patches.filter((o) => o === 0).length === 1, `nothing is sent twice from the start: ${patches}`);
  } finally {
    proxy.close();
  }
});

test("a refused token fails at once with the backend's code, without retries", async () => {
  requests.length = 0;
  await assert.rejects(
    upload(randomBytes(1024), { baseUrl: origin, token: "wrong", retryDelays: [0, 10, 10] }),
    (e) => e.code === "unauthorized" && e.status === 401 && e.message === "missing or unknown token",
  );
  assert.equal(requests.length, 1);
});

test("an aborted upload rejects with code aborted", async () => {
  const controller = new AbortController();
  const body = randomBytes(2 * 1024 * 1024);
  const pending = upload(body, {
    baseUrl: origin,
    token: TOKEN,
    chunkSize: 128 * 1024,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.bytesSent > 256 * 1024) controller.abort();
    },
  });
  await assert.rejects(pending, (e) => e.code === "aborted");
});

test("the upload id is the last path segment of the upload URL", () => {
  assert.equal(uploadIdFromUrl("https://ferry.lab/api/uploads/abc123"), "abc123");
  assert.equal(uploadIdFromUrl("/api/uploads/abc%20123/"), "abc 123");
  assert.throws(() => uploadIdFromUrl(""), (e) => e.code === "upload_failed");
});

test("storedUploads says what the server holds of each unfinished upload and forgets those it no longer has", async () => {
  const create = await fetch(`${origin}/api/uploads/`, { method: "POST", headers: { Authorization: `Bearer ${TOKEN}`, "Tus-Resumable": "1.0.0", "Upload-Length": "1000" } });
  const url = new URL(create.headers.get("location"), origin).href;
  await fetch(url, { method: "PATCH", headers: { Authorization: `Bearer ${TOKEN}`, "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream" }, body: Buffer.alloc(300, 1) });
  const entries = [
    { uploadUrl: url, size: 1000, metadata: { filename: "ceos.tar.xz" }, urlStorageKey: "tus::a" },
    { uploadUrl: url, size: 1000, metadata: { filename: "ceos.tar.xz" }, urlStorageKey: "tus::a2" }, // the same upload twice
    { uploadUrl: `${origin}/api/uploads/gone`, size: 5, metadata: { filename: "old.tar" }, urlStorageKey: "tus::b" },
  ];
  const removed = [];
  const urlStorage = { findAllUploads: async () => entries, removeUpload: async (key) => removed.push(key) };
  assert.deepEqual(await storedUploads({ token: TOKEN, urlStorage }), [{ filename: "ceos.tar.xz", size: 1000, offset: 300, url }]);
  assert.deepEqual(removed, ["tus::b"], "the one the server no longer has is forgotten");
});
