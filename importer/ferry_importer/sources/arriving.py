"""An upload read while it still arrives: how much has landed, what its sha256 turned out to be, and when an
import that caught up with it is waiting for its next bytes.

The backend's content link says `Upload-Offset` (bytes landed) and `Upload-Length` (declared), and once the
upload is complete `Repr-Digest: sha-256=:…:` (RFC 9530). The importer hashes what it streams and compares with
that digest at the end, before the engine may commit; a mismatch is `source_mismatch`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

WATCH_S = 1.0  # an import that received nothing for this long asks how much of the upload has arrived
_DIGEST = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):", re.ASCII)


@dataclass(frozen=True)
class UploadState:
    available: int
    length: int
    sha256: str | None = None  # hex, once the upload is complete

    @property
    def complete(self) -> bool:
        return self.available >= self.length


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None


def parse_repr_digest(value: str | None) -> str | None:
    """The sha-256 of a `Repr-Digest` header as hex, or None."""
    match = _DIGEST.search(value or "")
    if not match:
        return None
    try:
        raw = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def upload_state(headers: Mapping[str, str]) -> UploadState | None:
    """What a content link's answer says of its upload; None when it says nothing (not an upload)."""
    available, length = _number(headers.get("upload-offset")), _number(headers.get("upload-length"))
    if available is None or length is None:
        return None
    return UploadState(available, length, parse_repr_digest(headers.get("repr-digest")))


def is_waiting(read: int, state: UploadState | None, slack: float = 0.0) -> bool:
    """The import has caught up with an upload still arriving: it is less than `slack` bytes (what the upload
    brings in one watch interval) behind what has arrived. The backend hands out what landed about once a
    second, so an import bound by the upload reads in bursts and is never quite at the offset."""
    return state is not None and not state.complete and read + slack >= state.available


async def watch_arrival(
    read_offset: Callable[[], int],
    ask: Callable[[], UploadState | None],
    on_state: Callable[[UploadState, bool], Awaitable[None]],
    interval: float = WATCH_S,
) -> None:
    """While an import streams an arriving upload: every `interval`, ask (HEAD, on a thread) how much has
    arrived and report whether the import is waiting for the upload (less than one interval of the upload's
    own rate behind it). Ends when the upload is complete or the server says nothing of it; a failed question
    is only logged (the stream itself reports a broken source)."""
    previous: tuple[float, int] | None = None
    while True:
        await asyncio.sleep(interval)
        try:
            state = await asyncio.to_thread(ask)
        except Exception as exc:  # noqa: BLE001 - the stream reports the source's own failure
            log.info("could not ask how much of the upload arrived: %s", exc)
            continue
        if state is None:
            return
        now = time.monotonic()
        rate = (state.available - previous[1]) / max(1e-3, now - previous[0]) if previous else 0.0
        previous = (now, state.available)
        await on_state(state, is_waiting(read_offset(), state, max(0.0, rate) * interval))
        if state.complete:
            return
