"""tus 1.0 resumable uploads: the protocol rules (pure) and the on-disk part files (streaming I/O).

Memory stays bounded: a PATCH body is written through a buffer of at most WRITE_BUFFER bytes, and
the SHA-256 is updated as bytes arrive. The hasher lives in memory between PATCHes of one upload;
after a restart it is rebuilt by reading the part file once, never by holding it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio

from .errors import Conflict, FerryError, InsufficientStorage, InvalidRequest, TooLarge
from .security import is_decimal

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
WRITE_BUFFER = 1024 * 1024
CHECKPOINT_S = 1.0  # how often a PATCH records the bytes it has landed so far
EAGER_CHECKPOINT_S = 0.2  # ... while someone is waiting for those bytes (an import of the arriving upload)
READ_CHUNK = 1024 * 1024
UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{24}$")


class TusError(FerryError):
    """A tus protocol violation; the status is what the tus spec prescribes."""


def check_version(header: str | None) -> None:
    if header != TUS_VERSION:
        raise TusError(
            f"Tus-Resumable must be {TUS_VERSION}",
            code="unsupported_tus_version",
            status=412,
            headers={"Tus-Version": TUS_VERSION},
        )


def parse_length(header: str | None, max_bytes: int) -> int:
    if header is None:
        raise InvalidRequest(
            "Upload-Length is required (deferred length is not supported)", code="invalid_request", status=400
        )
    if not is_decimal(header):
        raise InvalidRequest("Upload-Length must be a non-negative integer", status=400)
    length = int(header)
    if length > max_bytes:
        raise TooLarge(f"upload of {length} bytes exceeds the limit of {max_bytes} bytes")
    return length


def parse_offset(header: str | None) -> int:
    if not is_decimal(header):
        raise InvalidRequest("Upload-Offset must be a non-negative integer", status=400)
    return int(header)


def parse_metadata(header: str | None) -> dict[str, str]:
    """`key base64value, key2 base64value2` → dict. Values must be UTF-8 text."""
    result: dict[str, str] = {}
    if not header:
        return result
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0]:
            continue
        if len(parts) > 2 or not re.fullmatch(r"[^\s,]+", parts[0]):
            raise InvalidRequest(f"Upload-Metadata pair {pair.strip()!r} is malformed", status=400)
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidRequest(f"Upload-Metadata value of {parts[0]!r} is not base64 UTF-8", status=400) from None
        result[parts[0]] = value
    return result


SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def declared_sha256(meta: dict[str, str]) -> str | None:
    """The sha256 a client declares up front (Upload-Metadata `sha256`, 64 hex digits): checked when the
    upload completes, and what lets an import of an unfinished upload take the duplicate fast path."""
    value = meta.get("sha256")
    if value is None:
        return None
    value = value.strip().lower()
    if not SHA256_RE.fullmatch(value):
        raise InvalidRequest("Upload-Metadata sha256 must be 64 hexadecimal digits", status=400)
    return value


def encode_metadata(meta: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in meta.items())


def safe_filename(name: str | None) -> str | None:
    """Only the last path component, printable, at most 255 characters: it is shown, never used as a path."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:255]
    return base or None


class BodyIdle(Exception):
    """The client sent nothing for too long; treated like a disconnect."""


async def with_idle_timeout(body: AsyncIterator[bytes], idle_s: float) -> AsyncIterator[bytes]:
    """End a request body that stalls: a half-open connection must not hold an upload forever."""
    iterator = body.__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(iterator.__anext__(), idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise BodyIdle(f"no bytes for {idle_s:g} s") from None
        yield chunk


class PartFiles:
    """The bytes of uploads on disk, one file per upload id under `root`."""

    def __init__(self, root: Path):
        self.root = root
        self._hashers: dict[str, tuple[int, hashlib._Hash]] = {}

    def path(self, upload_id: str) -> Path:
        if not UPLOAD_ID_RE.fullmatch(upload_id):
            raise ValueError("bad upload id")
        return self.root / upload_id

    def create(self, upload_id: str) -> None:
        with _disk_errors():
            self.root.mkdir(parents=True, exist_ok=True)
            self.path(upload_id).touch(exist_ok=False)
        self._hashers[upload_id] = (0, hashlib.sha256())

    def untouched_since(self, before: float) -> list[str]:
        """Ids of part files not written since `before` (epoch seconds): candidates for the orphan sweep."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return [e.name for e in entries if UPLOAD_ID_RE.fullmatch(e.name) and e.stat().st_mtime < before]

    def remove(self, upload_id: str) -> None:
        self._hashers.pop(upload_id, None)
        try:
            self.path(upload_id).unlink()
        except FileNotFoundError:
            pass

    async def _hasher_at(self, upload_id: str, offset: int):
        cached = self._hashers.get(upload_id)
        if cached and cached[0] == offset:
            return cached[1]
        hasher = hashlib.sha256()

        def _rehash() -> None:
            remaining = offset
            with open(self.path(upload_id), "rb") as f:
                while remaining > 0:
                    block = f.read(min(READ_CHUNK, remaining))
                    if not block:
                        raise Conflict("the stored part is shorter than its recorded offset", code="upload_corrupt")
                    hasher.update(block)
                    remaining -= len(block)

        await anyio.to_thread.run_sync(_rehash)
        return hasher

    async def append(
        self,
        upload_id: str,
        offset: int,
        length: int,
        body: AsyncIterator[bytes],
        checkpoint: Callable[[int], Awaitable[None]] | None = None,
        every_s: float = CHECKPOINT_S,
        awaited: Callable[[], bool] = lambda: False,
    ) -> tuple[int, BaseException | None]:
        """Write `body` at `offset`, never past `length`; return the new offset and what stopped it, if anything.

        Bytes received before a disconnect or an error are kept: the client resumes from there.
        A part file longer than the recorded offset (a crash mid-write) is cut back first.
        While the body lands, at most once every `every_s` the bytes so far are synced to disk and
        `checkpoint(offset)` records them: a backend killed mid-PATCH resumes from there, not from the
        PATCH's start. While `awaited()` (a reader waits for these bytes) that happens every EAGER_CHECKPOINT_S.
        """
        hasher = await self._hasher_at(upload_id, offset)
        path = self.path(upload_id)
        with _disk_errors():
            handle = await anyio.to_thread.run_sync(open, path, "r+b")
        written = 0
        stopped: BaseException | None = None

        def _write(data: bytes, at: int) -> None:
            with _disk_errors():
                handle.seek(at)
                handle.write(data)
                handle.flush()

        last_checkpoint = time.monotonic()

        async def _commit(data: bytes) -> None:
            nonlocal written, last_checkpoint
            await anyio.to_thread.run_sync(_write, data, offset + written)
            hasher.update(data)
            written += len(data)
            since = time.monotonic() - last_checkpoint
            if checkpoint is not None and (since >= every_s or (since >= EAGER_CHECKPOINT_S and awaited())):
                await anyio.to_thread.run_sync(os.fsync, handle.fileno())
                await checkpoint(offset + written)
                last_checkpoint = time.monotonic()

        try:
            with _disk_errors():
                await anyio.to_thread.run_sync(handle.truncate, offset)
            buffer = bytearray()
            try:
                async for chunk in body:
                    room = length - (offset + written + len(buffer))
                    if len(chunk) > room:
                        stopped = InvalidRequest("the body goes past Upload-Length", code="upload_overrun", status=400)
                        chunk = chunk[:room]
                    buffer += chunk
                    if len(buffer) >= WRITE_BUFFER or stopped:
                        data, buffer = bytes(buffer), bytearray()
                        await _commit(data)
                    if stopped:
                        break
            except FerryError as exc:
                stopped = exc
                buffer = bytearray()
            except Exception as exc:  # the client went away mid-body: keep what arrived
                stopped = exc
            if buffer:
                try:
                    await _commit(bytes(buffer))
                except FerryError as exc:
                    stopped = exc
            # Whatever happened, the file ends exactly at the bytes counted (and hashed).
            await anyio.to_thread.run_sync(handle.truncate, offset + written)
            await anyio.to_thread.run_sync(os.fsync, handle.fileno())
        finally:
            await anyio.to_thread.run_sync(handle.close)
        self._hashers[upload_id] = (offset + written, hasher)
        return offset + written, stopped

    def digest(self, upload_id: str) -> str | None:
        cached = self._hashers.pop(upload_id, None)
        return cached[1].hexdigest() if cached else None


class _disk_errors:
    """OS errors of the upload store as the project's own: a full disk is `insufficient_disk`."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or not isinstance(exc, OSError):
            return False
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage("no space left for uploads on the backend") from exc
        raise FerryError(f"upload storage failed: {exc.strerror or exc}", code="storage_error", status=500) from exc
