"""Decode a multi-block xz file on two threads at once (files written by `xz -T`, pixz, …).

xz blocks are independent, so while one thread decodes block k the other decodes block k+1. Each
block is re-wrapped as a one-block xz stream (stream header, the block as stored, a one-record
index, a footer), so liblzma itself still verifies every block's check (CRC32/CRC64/SHA-256) and
size. The file is still read once, front to back: the block map only says where blocks start.
Single-block files — and files whose blocks are too large to hold a few in memory — use the
ordinary sequential decoder instead.
"""

from __future__ import annotations

import lzma
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ferry_importer.errors import CompressionMemoryLimit, CorruptCompression, ImporterError, TruncatedCompression

# What one xz decoder may allocate. `xz -9` needs 65 MiB; a block header may declare a 4 GiB dictionary, and
# liblzma would allocate it: a few kB of archive could take a host's memory.
XZ_MEMORY_LIMIT = 256 << 20


def xz_decoder() -> lzma.LZMADecompressor:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)


def xz_error(exc: lzma.LZMAError, detail: str) -> ImporterError:
    """liblzma's error as the project's: a refused memory demand has its own code, anything else is corruption."""
    if "memory usage limit" in str(exc).lower():
        return CompressionMemoryLimit(
            f"the xz data needs more than {XZ_MEMORY_LIMIT >> 20} MiB of memory to decode (its dictionary is too large)",
            detail,
        )
    return CorruptCompression("the xz data is corrupt", detail)


HEADER = 12
FOOTER = 12
MAGIC = b"\xfd7zXZ\x00"
MAX_PARALLEL_BLOCK = 8 << 20  # uncompressed bytes; at most `workers` blocks are in memory at once


@dataclass(frozen=True)
class Block:
    offset: int  # where the block header starts in the file
    unpadded: int  # block header + compressed data + check
    uncompressed: int
    flags: bytes  # the stream flags (check type)

    @property
    def stored(self) -> int:
        return (self.unpadded + 3) & ~3


def block_map(path: Path | BinaryIO) -> list[Block] | None:
    """Every block of every stream, in file order, from the indexes at the end; None if unreadable.

    `path` may be an open seekable file (a remote archive read with Range requests)."""
    if not isinstance(path, (str, Path)):
        return _block_map(path)
    try:
        with open(path, "rb") as fh:
            return _block_map(fh)
    except OSError:
        return None


def _block_map(fh: BinaryIO) -> list[Block] | None:
    blocks: list[Block] = []
    try:
        pos = fh.seek(0, 2)
        while pos > 0:
            fh.seek(max(0, pos - 4096))
            tail = fh.read(pos - max(0, pos - 4096))
            pos -= len(tail) - len(tail.rstrip(b"\x00"))
            if pos <= 0:
                break
            fh.seek(pos - FOOTER)
            footer = fh.read(FOOTER)
            if footer[10:12] != b"YZ" or zlib.crc32(footer[4:10]) != int.from_bytes(footer[:4], "little"):
                return None
            index_size = (int.from_bytes(footer[4:8], "little") + 1) * 4
            fh.seek(pos - FOOTER - index_size)
            records = _index_records(fh.read(index_size))
            if records is None:
                return None
            stored = sum((u + 3) & ~3 for u, _ in records)
            start = pos - FOOTER - index_size - stored - HEADER
            if start < 0:
                return None
            offset = start + HEADER
            stream_blocks = []
            for unpadded, size in records:
                stream_blocks.append(Block(offset, unpadded, size, footer[8:10]))
                offset += (unpadded + 3) & ~3
            blocks[:0] = stream_blocks
            pos = start
    except (OSError, IndexError, ValueError):
        return None
    return blocks


def _index_records(index: bytes) -> list[tuple[int, int]] | None:
    if len(index) < 8 or index[0] != 0 or zlib.crc32(index[:-4]) != int.from_bytes(index[-4:], "little"):
        return None
    count, offset = _varint(index, 1)
    records = []
    for _ in range(count):
        unpadded, offset = _varint(index, offset)
        size, offset = _varint(index, offset)
        records.append((unpadded, size))
    return records


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(9):
        byte = data[offset + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset + i + 1
        shift += 7
    raise ValueError("xz varint too long")


def _encode(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parallel_worthwhile(blocks: list[Block] | None) -> bool:
    return blocks is not None and len(blocks) >= 2 and max(b.uncompressed for b in blocks) <= MAX_PARALLEL_BLOCK


def decode_block(block: Block, stored: bytes) -> bytes:
    """Decode one block by wrapping it as a complete one-block xz stream (liblzma verifies the check)."""
    header = MAGIC + block.flags + zlib.crc32(block.flags).to_bytes(4, "little")
    record = b"\x00" + _encode(1) + _encode(block.unpadded) + _encode(block.uncompressed)
    record += b"\x00" * (-len(record) % 4)
    index = record + zlib.crc32(record).to_bytes(4, "little")
    fields = (len(index) // 4 - 1).to_bytes(4, "little") + block.flags
    footer = zlib.crc32(fields).to_bytes(4, "little") + fields + b"YZ"
    decoder = xz_decoder()
    try:
        out = decoder.decompress(header + stored + index + footer)
    except lzma.LZMAError as exc:
        raise xz_error(exc, f"block at byte {block.offset}: {exc}") from None
    if not decoder.eof or len(out) != block.uncompressed:
        raise CorruptCompression("the xz data is corrupt", f"block at byte {block.offset} does not match the index")
    return out


def decode_parallel(raw: BinaryIO, blocks: list[Block], max_out: int, workers: int = 2) -> Iterator[bytes]:
    """Read `raw` front to back (every byte, so hashes and counts stay exact) and yield the decoded data
    in order, at most `max_out` bytes per piece, with `workers` blocks being decoded at once."""
    pos = 0
    pending: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ferry-xz") as pool:
        try:
            for block in blocks:
                _skip(raw, block.offset - pos)
                stored = _read_exact(raw, block.stored)
                pos = block.offset + block.stored
                pending.append(pool.submit(decode_block, block, stored))
                del stored
                if len(pending) >= workers:
                    yield from _slices(pending.popleft().result(), max_out)
            while pending:
                yield from _slices(pending.popleft().result(), max_out)
            while raw.read(1 << 20):  # indexes, footers and padding after the last block
                pass
        finally:
            for future in pending:
                future.cancel()


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    if len(data) <= size:
        yield data
        return
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def _read_exact(raw: BinaryIO, size: int) -> bytes:
    parts, left = [], size
    while left:
        data = raw.read(left)
        if not data:
            raise TruncatedCompression("the xz data is cut short (the file is truncated)")
        parts.append(data)
        left -= len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _skip(raw: BinaryIO, size: int) -> None:
    if size < 0:
        raise CorruptCompression("the xz data is corrupt", "blocks overlap in the index")
    if size:
        _read_exact(raw, size)
