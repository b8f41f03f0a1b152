// The first-bytes check the page runs before an upload: the importer's magic numbers and codes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { checkArchiveFile, checkArchiveHead } from "../src/archive.js";

const bytes = (...b) => new Uint8Array(b);

/** A 512-byte tar header for `name`, with "ustar" or (v7) without, and its checksum filled in. */
function tarHeader(name, { ustar = true } = {}) {
  const block = new Uint8Array(512);
  block.set(new TextEncoder().encode(name), 0);
  block.set(new TextEncoder().encode("0000644\0"), 100);
  block.set(new TextEncoder().encode("00000000000\0"), 124);
  if (ustar) block.set(new TextEncoder().encode("ustar\x0000"), 257);
  block.fill(0x20, 148, 156);
  const sum = block.reduce((a, b) => a + b, 0);
  block.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
  return block;
}

test("every compression the importer reads passes by its magic bytes", () => {
  assert.deepEqual(checkArchiveHead(bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1), 100), { ok: true, kind: "xz" });
  assert.deepEqual(checkArchiveHead(bytes(0x1f, 0x8b, 8), 100), { ok: true, kind: "gzip" });
  assert.deepEqual(checkArchiveHead(bytes(0x28, 0xb5, 0x2f, 0xfd, 0), 100), { ok: true, kind: "zstd" });
  assert.deepEqual(checkArchiveHead(bytes(0x50, 0x2a, 0x4d, 0x18, 4), 100), { ok: true, kind: "zstd" }, "a pzstd skippable frame first");
  assert.deepEqual(checkArchiveHead(bytes(0x5f, 0x2a, 0x4d, 0x18), 100), { ok: true, kind: "zstd" });
  assert.deepEqual(checkArchiveHead(bytes(0x42, 0x5a, 0x68, 0x39), 100), { ok: true, kind: "bzip2" });
});

test("a tar passes by ustar at 257 or by an old-style header whose checksum adds up", () => {
  assert.deepEqual(checkArchiveHead(tarHeader("manifest.json"), 10240), { ok: true, kind: "tar" });
  assert.deepEqual(checkArchiveHead(tarHeader("etc/os-release", { ustar: false }), 10240), { ok: true, kind: "tar" });
  const broken = tarHeader("etc/os-release", { ustar: false });
  broken[0] ^= 1; // the checksum no longer adds up
  assert.equal(checkArchiveHead(broken, 10240).code, "not_an_archive");
});

test("text, random bytes, a short file and a near miss of a magic are not_an_archive", () => {
  const text = new TextEncoder().encode("just some text\n".repeat(40));
  for (const head of [text, bytes(0x74, 0x69, 0x6e, 0x79), bytes(0x1f, 0x8c, 0, 0), bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x01), bytes(0x60, 0x2a, 0x4d, 0x18)]) {
    const verdict = checkArchiveHead(head, 5000);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.code, "not_an_archive");
    assert.match(verdict.message, /not an image archive/);
  }
});

test("an empty file is empty_archive", () => {
  assert.deepEqual(checkArchiveHead(new Uint8Array(0), 0).code, "empty_archive");
});

test("a file is judged from its first 512 bytes only", async () => {
  const text = new Blob(["PK\x03\x04 a zip file"]);
  assert.equal((await checkArchiveFile(text)).code, "not_an_archive");
  assert.equal((await checkArchiveFile(new Blob([]))).code, "empty_archive");
  assert.equal((await checkArchiveFile(new Blob([tarHeader("a"), new Uint8Array(4096).fill(0x41)]))).kind, "tar");
});
