"""Serving an upload's bytes to importers: HTTP Range parsing (pure) and a bounded-memory file stream."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

CHUNK = 256 * 1024
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
