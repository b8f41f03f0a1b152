"""Compression: detection by magic bytes, bounded streaming decompression, and the uncompressed size.

Every decoder is fed small input blocks and asked for at most `max_out` bytes at a time, so memory is
bounded whatever the compression ratio (a few kB of zstd or xz can stand for gigabytes of zeros).
zstd uses `backports.zstd` (the standard library's `compression.zstd` from Python 3.14), the one zstd
binding whose decoder takes an output limit and still reports a frame cut short. Decoder errors become
the project's own archive errors here.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from backports import zstd

from ferry_importer.archive.xzblocks import xz_decoder, xz_error
from ferry_importer.errors import CorruptCompression, TruncatedCompression


class Compression(StrEnum):
    NONE = "none"
    XZ = "xz"
    GZIP = "gzip"
    ZSTD = "zstd"
    BZIP2 = "bzip2"


MAGIC = {
    Compression.XZ: b"\xfd7zXZ\x00",
    Compression.GZIP: b"\x1f\x8b",
    Compression.ZSTD: b"\x28\xb5\x2f\xfd",
    Compression.BZIP2: b"BZh",
}
SNIFF_BYTES = 6
# zstd skippable frames (magic 0x184D2A50-5F, little-endian) carry metadata, no data; pzstd puts one before
# every frame, so a .zst may start with one and has one between its frames.
ZSTD_SKIPPABLE_TAIL = b"\x2a\x4d\x18"
READ_BLOCK = 256 * 1024


def detect_compression(head: bytes) -> Compression:
    """The compression of a stream from its first bytes; NONE when no known magic matches."""
    for kind in MAGIC:
        if _starts_member(head, kind):
            return kind
    return Compression.NONE


def _starts_member(data: bytes, kind: Compression) -> bool:
    if data.startswith(MAGIC[kind]):
        return True
    return kind is Compression.ZSTD and len(data) >= 4 and 0x50 <= data[0] <= 0x5F and data[1:4] == ZSTD_SKIPPABLE_TAIL


class _Decoder:
    """One compressed stream member at a time; restarts for concatenated members (pigz, pbzip2, xz -T)."""

    def __init__(self, kind: Compression) -> None:
        self.kind = kind
        self._obj = self._new()

    def _new(self):
        if self.kind is Compression.XZ:
            return xz_decoder()  # with a memory limit: the archive's headers choose the dictionary size
        if self.kind is Compression.GZIP:
            return zlib.decompressobj(wbits=31)
        if self.kind is Compression.BZIP2:
            return bz2.BZ2Decompressor()
        return zstd.ZstdDecompressor()

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    def restart(self) -> None:
        self._obj = self._new()

    def unused(self) -> bytes:
        return self._obj.unused_data

    def feed(self, data: bytes, max_out: int) -> tuple[bytes, bytes]:
        """Decode from `data`; return (output, input the decoder did not take yet)."""
        obj = self._obj
        if self.kind is Compression.GZIP:
            return obj.decompress(data, max_out), obj.unconsumed_tail
        return obj.decompress(data, max_out), b""  # lzma/bz2/zstd keep unconsumed input themselves

    def has_output_pending(self) -> bool:
        """lzma/bz2/zstd stop at max_out with input still inside; they must be called again before new input."""
        return self.kind is not Compression.GZIP and not self._obj.needs_input


def decompress(raw: BinaryIO, kind: Compression, max_out: int = 1 << 20) -> Iterator[bytes]:
    """Yield decompressed pieces of at most `max_out` bytes, for every compression."""
    if kind is Compression.NONE:
        while chunk := raw.read(max_out):
            yield chunk
        return
    decoder = _Decoder(kind)
    data = b""
    try:
        while True:
            if decoder.eof:
                following = _skip_to_next_member(raw, decoder.unused() + data, kind)
                if following is None:
                    return  # trailing padding or garbage after the last member is ignored, as xz/gzip do
                data = following
                decoder.restart()
            if not data and not decoder.has_output_pending():
                data = raw.read(READ_BLOCK)
                if not data:
                    break
            out, data = decoder.feed(data, max_out)
            if out:
                yield out
    except lzma.LZMAError as exc:
        raise xz_error(exc, str(exc)) from None
    except (zlib.error, OSError, EOFError, zstd.ZstdError, ValueError) as exc:
        raise CorruptCompression(f"the {kind.value} data is corrupt", str(exc)) from None
    raise TruncatedCompression(f"the {kind.value} data is cut short (the file is truncated)")


def _skip_to_next_member(raw: BinaryIO, data: bytes, kind: Compression) -> bytes | None:
    """Bytes starting at the next compressed member, or None when only padding/garbage is left."""
    need = len(MAGIC[kind])
    while True:
        if kind is Compression.XZ:
            data = data.lstrip(b"\x00")  # xz stream padding between concatenated streams
        if len(data) >= need:
            return data if _starts_member(data, kind) else None
        more = raw.read(READ_BLOCK)
        if not more:
            return None
        data += more


def uncompressed_size(path: Path | BinaryIO, kind: Compression) -> int | None:
    """The decompressed size read from the file's own metadata, or None when it cannot be known up front.

    `path` may be an open seekable file: a remote archive read with a few Range requests.

    xz: the exact sum from the index of every stream (read backwards from the end). gzip: the trailer
    holds the size modulo 2**32, so the smallest value not below the compressed size is returned (a
    lower bound for >4 GiB members). zstd: the first frame's content size when the header carries it.
    """
    if not isinstance(path, (str, Path)):
        return _size_from_metadata(path, kind)
    try:
        with open(path, "rb") as fh:
            return _size_from_metadata(fh, kind)
    except OSError:
        return None


def _size_from_metadata(fh: BinaryIO, kind: Compression) -> int | None:
    try:
        if kind is Compression.NONE:
            return fh.seek(0, 2)
        if kind is Compression.XZ:
            return _xz_uncompressed_size(fh)
        if kind is Compression.GZIP:
            return _gzip_uncompressed_size(fh)
        if kind is Compression.ZSTD:
            fh.seek(0)
            head = fh.read(18)  # a leading skippable frame (pzstd) says nothing about the size
            return zstd.get_frame_info(head).decompressed_size if head.startswith(MAGIC[kind]) else None
    except (OSError, ValueError, zstd.ZstdError):
        return None
    return None


def _gzip_uncompressed_size(fh: BinaryIO) -> int | None:
    total = fh.seek(0, 2)
    if total < 18:
        return None
    fh.seek(total - 4)
    isize = int.from_bytes(fh.read(4), "little")
    while isize < total - 18:
        isize += 1 << 32
    return isize


def _xz_uncompressed_size(fh: BinaryIO) -> int | None:
    from ferry_importer.archive.xzblocks import block_map

    blocks = block_map(fh)
    return sum(block.uncompressed for block in blocks) if blocks is not None else None
