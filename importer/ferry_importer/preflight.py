"""Checks made before a byte reaches the engine: the image name, the change lines, free disk space (with the
archive's uncompressed size read ahead from its own metadata)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, cast

from ferry_contract import ImageReference, parse_reference
from ferry_contract import InvalidReference as ContractInvalidReference
from ferry_contract.jobs import change_problem
from ferry_importer.archive.compression import SNIFF_BYTES, detect_compression, uncompressed_size
from ferry_importer.datadir import free_bytes
from ferry_importer.errors import InsufficientDisk, InvalidChange, InvalidReference, SourceMismatch
from ferry_importer.sources.base import Source, source_path
from ferry_importer.sources.remote_file import RemoteFile
from ferry_importer.sources.url import UrlSource

log = logging.getLogger(__name__)

# The instructions `docker import --change` accepts (the engine's commit/import allow-list).
CHANGE_INSTRUCTIONS = {
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}
DISK_HEADROOM = 64 << 20
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def check_reference(text: str) -> ImageReference:
    try:
        return parse_reference(text)
    except ContractInvalidReference as exc:
        raise InvalidReference(f"invalid image name: {exc}", text) from None


def check_changes(changes: Iterable[str]) -> list[str]:
    checked = []
    for line in changes:
        problem = change_problem(line)
        if problem is not None:
            raise InvalidChange(problem, line[:200])
        keyword = line.strip().split(None, 1)[0].upper() if line.strip() else ""
        if keyword not in CHANGE_INSTRUCTIONS:
            allowed = ", ".join(sorted(CHANGE_INSTRUCTIONS))
            raise InvalidChange(f"change {line!r} is not allowed: use one of {allowed}", line)
        checked.append(line.strip())
    return checked


def check_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.lower().removeprefix("sha256:")
    if not SHA256_HEX.match(value):
        raise InvalidReference("the expected sha256 must be 64 hexadecimal characters", value)
    return value


def disk_needed(uncompressed: int, loads: bool) -> int:
    """Bytes an import needs under the engine's data root.

    `docker load` on the graphdriver store first unpacks the whole upload into a temporary directory
    and then extracts each layer, so it needs the archive's size twice; an import extracts it once.
    """
    return uncompressed * (2 if loads else 1) + DISK_HEADROOM


def disk_places(engine_root: str | None, engine_host: str, spooled_to: dict[str, Path]) -> dict[str, Path]:
    """The places an import's bytes land, which must have room for them.

    The engine's data root counts only when the engine runs on this host (a unix socket: over tcp the
    path names another machine's disk). A directory counts only when the job writes archive bytes to
    it: an unused spool on a small disk must not refuse an image the engine's own big disk can hold.
    """
    places = dict(spooled_to)
    if engine_root and engine_host.startswith("unix://"):
        places["the engine's data root"] = Path(engine_root)
    return places


def check_disk(needed: int, places: dict[str, Path], probe: Callable[[Path], int | None] = free_bytes) -> None:
    """Raise InsufficientDisk when any place has less than `needed` free (a place not visible here is skipped)."""
    for label, path in places.items():
        free = probe(path)
        if free is not None and free < needed:
            raise InsufficientDisk(
                f"not enough free disk for this image: {label} {path} has {_human(free)} free, "
                f"about {_human(needed)} are needed",
                f"free={free} needed={needed}",
            )


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1000
    return f"{size} B"


def read_uncompressed_size(source: Source) -> int | None:
    """From the archive's own metadata: a local file is read directly, a URL source with a few Range requests."""
    path = source_path(source)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(SNIFF_BYTES)
        except OSError:
            return None
        return uncompressed_size(path, detect_compression(head))
    if not isinstance(source, UrlSource) or not source.size or source.arriving:
        return None  # an upload still arriving has no trailer yet: reading it would wait for the whole upload
    try:
        with RemoteFile(source, source.size) as remote:
            head = remote.read(SNIFF_BYTES)
            return uncompressed_size(cast(BinaryIO, remote), detect_compression(head))
    except OSError as exc:
        log.info("the archive's size could not be read ahead from %s: %s", source.describe(), exc)
        return None


async def probe_size(source: Source) -> bool:
    """A network source learns its size before streaming (True when it did). It runs under the progress ticker,
    so the receiver keeps hearing `preparing` while a slow server answers; a cancel aborts it at once."""
    probe = getattr(source, "probe", None)
    if probe is None:
        return False
    try:
        await asyncio.to_thread(probe)
    except asyncio.CancelledError:
        abort = getattr(source, "abort_probe", None)
        if abort is not None:
            abort()
        raise
    return True


async def arrived_sha256(source: Source) -> str | None:
    """The sha256 the backend computed over the whole upload, for an upload that was still arriving."""
    if not isinstance(source, UrlSource) or not source.arriving:
        return None
    state = await asyncio.to_thread(source.upload_state)
    if state is None or state.sha256 is None:
        raise SourceMismatch("the upload's sha256 is unknown: it cannot be checked", f"{state}")
    return state.sha256
