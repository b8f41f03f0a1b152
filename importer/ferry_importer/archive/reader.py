"""Read an archive in one pass on a worker thread: sniff, decompress, walk the tar, hash — and hand
bounded chunks to the event loop.

The thread puts, in order: one `Detected`, then `Piece`s (≈ chunk_size decompressed bytes each), at
most one `Held` (the end-of-archive marker, sent only after the end checks), then `End` — or `Failed`.
The channel between thread and loop holds at most `capacity` items, so memory stays flat whatever the
archive size. liblzma, zlib, bz2, zstd and hashlib release the GIL, so decompression overlaps with the
event loop's sending.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from ferry_importer.archive import xzblocks
from ferry_importer.archive.compression import SNIFF_BYTES, Compression, decompress, detect_compression
from ferry_importer.archive.layout import CAPTURED, Layout, classify
from ferry_importer.archive.tarstream import TarWalker
from ferry_importer.errors import EmptyArchive, ImporterError, NotAnArchive, TruncatedTar
from ferry_importer.sources.base import ConsumedBytes, Source, source_path


@dataclass(frozen=True)
class Detected:
    compression: Compression
    layout: Layout
    layer_files: list[tuple[str, int]]  # grows in the reader thread as layer files pass: (name, size)


@dataclass(frozen=True)
class Piece:
    data: bytes
    consumed: int  # archive (compressed) bytes consumed when this piece was complete


@dataclass(frozen=True)
class Held:
    data: bytes


@dataclass(frozen=True)
class End:
    sha256: str
    consumed: int
    walker: TarWalker


@dataclass(frozen=True)
class Failed:
    error: BaseException


class Stopped(Exception):
    """The consumer went away; the reader thread ends quietly."""


class Channel:
    """Thread → event loop hand-off with back-pressure: `put` blocks while `capacity` items are unread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._slots = threading.Semaphore(capacity)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._closed = threading.Event()

    def put(self, item: object) -> None:
        while not self._slots.acquire(timeout=0.1):
            if self._closed.is_set():
                raise Stopped
        if self._closed.is_set():
            raise Stopped
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            raise Stopped from None

    async def get(self) -> object:
        item = await self._queue.get()
        self._slots.release()
        return item

    def close(self) -> None:
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


class _Prepended:
    """A file-like that first returns `head`, then reads on from `raw` (sniffing without seeking)."""

    def __init__(self, head: bytes, raw: ConsumedBytes) -> None:
        self._head = head
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._raw.read(size)


class ArchiveReader:
    """Runs the one-pass read on a daemon thread; `stop()` ends it within one read block, and at once
    when the thread waits on the source (a stalled download): the opened source is closed under it."""

    def __init__(self, source: Source, channel: Channel, *, chunk_size: int = 1 << 20, decode_threads: int = 2) -> None:
        self.source = source
        self.channel = channel
        self.chunk_size = chunk_size
        self.decode_threads = decode_threads
        self._thread = threading.Thread(target=self._run, name="ferry-archive-reader", daemon=True)
        self._lock = threading.Lock()  # orders `stop()` against the thread publishing what it opened
        self._opened: BinaryIO | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Sources' readers may be closed from another thread (see `Source.open`): a read blocked
        on the network raises at once, and the thread ends quietly because the channel is closed."""
        with self._lock:
            self.channel.close()
            opened = self._opened
        if opened is not None:
            opened.close()

    async def join(self, timeout: float = 10.0) -> bool:
        await asyncio.to_thread(self._thread.join, timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        raw: BinaryIO | None = None
        try:
            raw = self.source.open()
            with self._lock:
                if self.channel.closed:
                    raise Stopped
                self._opened = raw
            self._read(ConsumedBytes(raw))
        except Stopped:
            return
        except BaseException as exc:  # handed to the event loop, which raises it in the pipeline
            try:
                self.channel.put(Failed(exc))
            except Stopped:
                pass
        finally:
            if raw is not None:
                raw.close()

    def _read(self, counted: ConsumedBytes) -> None:
        head = counted.read(SNIFF_BYTES)
        if not head:
            raise EmptyArchive("the archive file is empty")
        kind = detect_compression(head)
        walker = TarWalker(capture=CAPTURED)
        put = self.channel.put
        pending: list[tuple[bytes, bytes]] = []  # walked before the layout could be decided
        detected = False
        buffer = bytearray()
        tail = bytearray()
        for piece in self._decoded(_Prepended(head, counted), kind):
            if self.channel.closed:
                raise Stopped
            pending.append(walker.feed(piece))
            if not detected:
                if not _decidable(walker):
                    continue
                put(Detected(kind, classify(walker.first_members), walker.layer_files))
                detected = True
            for sent, held in pending:
                tail += held
                if not buffer and len(sent) >= self.chunk_size // 2:
                    put(Piece(sent, counted.count))  # the usual case: a whole decoder output, no copy
                    continue
                buffer += sent
                if len(buffer) >= self.chunk_size:
                    put(Piece(bytes(buffer), counted.count))
                    buffer.clear()
            pending.clear()
        if walker.offset == 0:
            raise EmptyArchive(f"the {kind.value} archive decompresses to nothing")
        try:
            walker.finish()
        except TruncatedTar:
            if walker.member_count == 0:
                raise NotAnArchive("the content is not a tar archive (too short)") from None
            raise
        if walker.member_count == 0:
            raise EmptyArchive("the archive contains no files")
        if not detected:
            put(Detected(kind, classify(walker.first_members), walker.layer_files))
        for sent, held in pending:
            buffer += sent
            tail += held
        if buffer:
            put(Piece(bytes(buffer), counted.count))
        if tail:
            put(Held(bytes(tail)))
        put(End(counted.hexdigest(), counted.count, walker))

    def _decoded(self, raw: _Prepended, kind: Compression) -> Iterator[bytes]:
        """Multi-block xz files are decoded on two threads; everything else by the sequential decoder."""
        if kind is Compression.XZ and self.decode_threads > 1:
            path = source_path(self.source)
            blocks = xzblocks.block_map(path) if path is not None else None
            if blocks is not None and xzblocks.parallel_worthwhile(blocks):
                return xzblocks.decode_parallel(
                    cast(BinaryIO, raw), blocks, self.chunk_size, workers=self.decode_threads
                )
        return decompress(cast(BinaryIO, raw), kind, self.chunk_size)


def _decidable(walker: TarWalker) -> bool:
    return walker.ended or any(m.name not in ("", ".") for m in walker.first_members)


__all__ = ["ArchiveReader", "Channel", "Detected", "End", "Failed", "Held", "ImporterError", "Piece"]
