"""Checks made before a byte reaches the engine: the image name, the change lines, free disk space."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from ferry_contract import ImageReference, parse_reference
from ferry_contract import InvalidReference as ContractInvalidReference
from ferry_contract.jobs import change_problem
from ferry_importer.datadir import free_bytes
from ferry_importer.errors import InsufficientDisk, InvalidChange, InvalidReference

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
