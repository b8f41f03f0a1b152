"""Serving an upload's bytes to importers: HTTP Range parsing (pure), a bounded-memory file stream, and the
stream of an upload still arriving, which waits for its next bytes instead of ending.

An upload being written is served only up to its recorded offset (bytes synced to disk, which a restarted
backend keeps), never past it. A waiting stream wakes when a PATCH on this replica records more bytes
(`UploadSignals`); other replicas share the upload volume and the database, so a slow re-check every
`RECHECK_S` is the fallback. An upload that lands nothing for `idle_s` is abandoned: the stream ends with an
error, and later requests are answered 409 `upload_abandoned`.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio

CHUNK = 256 * 1024
RECHECK_S = 2.0  # a waiting stream re-reads the offset this often when no PATCH on this replica wakes it
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII)  # ASCII digits: int() refuses "²"


class Unsatisfiable(ValueError):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range [start, end] a Range header asks for; None = the whole file.

    Several ranges or a syntax we do not serve are ignored (the whole file is sent, as RFC 9110
    allows); a range that starts past the end raises Unsatisfiable (416).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise Unsatisfiable(header)
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size:
        raise Unsatisfiable(header)
    if end < start:
        return None
    return start, min(end, size - 1)


def repr_digest(sha256_hex: str) -> str:
    """RFC 9530 `Repr-Digest` of a whole upload: `sha-256=:<base64>:`."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"


def is_abandoned(complete: bool, updated_at: datetime, now: datetime, idle_s: float) -> bool:
    """An unfinished upload that landed no byte for `idle_s` seconds."""
    return not complete and (now - updated_at).total_seconds() >= idle_s


async def read_file(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes start..end inclusive, CHUNK at a time, file I/O off the event loop."""
    handle = await anyio.to_thread.run_sync(open, path, "rb")
    try:
        await anyio.to_thread.run_sync(handle.seek, start)
        remaining = end - start + 1
        while remaining > 0:
            block = await anyio.to_thread.run_sync(handle.read, min(CHUNK, remaining))
            if not block:
                break
            remaining -= len(block)
            yield block
    finally:
        await anyio.to_thread.run_sync(handle.close)


class UploadSignals:
    """Wakes the content streams waiting for an upload's next bytes on this replica.

    A waiter takes `current(upload_id)` *before* it looks at the offset, then waits on it: a notify between
    the look and the wait is not lost. Events are held weakly: an upload nobody waits for costs nothing.
    """

    def __init__(self) -> None:
        self._events: weakref.WeakValueDictionary[str, asyncio.Event] = weakref.WeakValueDictionary()

    def current(self, upload_id: str) -> asyncio.Event:
        event = self._events.get(upload_id)
        if event is None:
            event = self._events[upload_id] = asyncio.Event()
        return event

    def awaited(self, upload_id: str) -> bool:
        """A content stream on this replica is waiting for this upload's next bytes."""
        return upload_id in self._events

    def notify(self, upload_id: str) -> None:
        event = self._events.pop(upload_id, None)
        if event is not None:
            event.set()


@dataclass(frozen=True)
class Landed:
    """What the store says of an upload now: None from `look()` means it was removed."""

    offset: int
    complete: bool
    updated_at: datetime


class UploadGone(Exception):
    """The upload was removed (tus DELETE, expiry) while its bytes were being served."""


class UploadAbandoned(Exception):
    """The upload landed nothing for the idle limit while its bytes were being served."""


async def stream_growing(
    path: Path,
    start: int,
    end: int,
    *,
    look: Callable[[], Awaitable[Landed | None]],
    signals: UploadSignals,
    upload_id: str,
    idle_s: float,
    now: Callable[[], datetime],
    recheck_s: float = RECHECK_S,
) -> AsyncIterator[bytes]:
    """Bytes start..end of an upload as they land: what is recorded is sent, then the stream waits (woken by
    a PATCH, or re-checking every `recheck_s`) until `end` is reached. Raises UploadGone / UploadAbandoned,
    which ends the response mid-body: the client sees a broken transfer, never a short file."""
    position = start
    while position <= end:
        wake = signals.current(upload_id)
        landed = await look()
        if landed is None:
            raise UploadGone(upload_id)
        if landed.offset > position:
            last = min(end, landed.offset - 1)
            async for block in read_file(path, position, last):
                position += len(block)
                yield block
            continue
        if is_abandoned(landed.complete, landed.updated_at, now(), idle_s):
            raise UploadAbandoned(upload_id)
        waited = time.monotonic()
        try:
            await asyncio.wait_for(wake.wait(), recheck_s)
        except TimeoutError:
            pass
        if time.monotonic() - waited < 0.001:  # never spin, whatever wakes us
            await asyncio.sleep(0.01)
