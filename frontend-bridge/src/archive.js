// Is a file an image archive at all? Decided from its first bytes, with the importer's own magic
// numbers (importer/ferry_importer/compression.py) and codes, so a bad file is refused before a
// single byte is uploaded instead of after the whole upload.

/** How many leading bytes the check needs: one tar header block. */
export const HEAD_BYTES = 512;

const MAGIC = [
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["gzip", [0x1f, 0x8b]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["bzip2", [0x42, 0x5a, 0x68]],
];

const startsWith = (head, bytes, at = 0) => head.length >= at + bytes.length && bytes.every((b, i) => head[at + i] === b);

/** A zstd skippable frame (magic 0x184D2A50–5F, little-endian): pzstd starts a .zst with one. */
const zstdSkippable = (head) => head.length >= 4 && head[0] >= 0x50 && head[0] <= 0x5f && startsWith(head, [0x2a, 0x4d, 0x18], 1);

/** A tar header: "ustar" at 257 (POSIX, GNU), or an old-style header whose checksum adds up. */
function isTarHeader(head) {
  if (head.length < HEAD_BYTES) return false;
  if (startsWith(head, [0x75, 0x73, 0x74, 0x61, 0x72], 257)) return true;
  const field = String.fromCharCode(...head.subarray(148, 156)).replace(/[\0 ]+$/g, "").trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < HEAD_BYTES; i += 1) sum += i >= 148 && i < 156 ? 0x20 : head[i];
  return sum === parseInt(field, 8);
}

/**
 * The verdict on a file from its first bytes (at most HEAD_BYTES) and its size:
 * {ok: true, kind} with kind xz, gzip, zstd, bzip2 or tar; or {ok: false, code, message} with the
 * importer's codes, empty_archive for 0 bytes and not_an_archive for anything else it would refuse.
 * A first block of zeros is left to the importer (a tar's end marker: it decides what follows).
 */
export function checkArchiveHead(head, size) {
  const bytes = head instanceof Uint8Array ? head : new Uint8Array(head);
  if (size === 0 || bytes.length === 0) return { ok: false, code: "empty_archive", message: "the archive file is empty" };
  for (const [kind, magic] of MAGIC) if (startsWith(bytes, magic)) return { ok: true, kind };
  if (zstdSkippable(bytes)) return { ok: true, kind: "zstd" };
  if (isTarHeader(bytes)) return { ok: true, kind: "tar" };
  if (bytes.length >= HEAD_BYTES && bytes.subarray(0, HEAD_BYTES).every((b) => b === 0)) return { ok: true, kind: "tar" };
  return {
    ok: false,
    code: "not_an_archive",
    message: "the file is not an image archive: it is neither a tar nor an xz, gzip, zstd or bzip2 compressed file",
  };
}

/** Read a Blob's first bytes and check them (nothing else of the file is read). */
export async function checkArchiveFile(file) {
  const head = new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer());
  return checkArchiveHead(head, file.size);
}
