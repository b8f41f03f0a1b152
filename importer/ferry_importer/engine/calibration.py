"""How fast this host's engine loads layers, measured once, before its first docker-save load.

A load's bar splits between the stream and the engine loading the layers after the last byte; how long the
second stage takes depends on the host (storage driver, disks, CPU) by several times. Before a host has loaded
anything, `measure_load_pace` loads small generated archives (each one untagged image of one layer of random files
from 2 KiB to 512 KiB: about 4 MiB, 28 MiB and 4 MiB again), times the stage after each one's last byte and removes
each image. The pace is the slope between the sizes, so the fixed cost of any load does not count as slowness. The
archive is generated as it streams: nothing is kept in memory but one file's bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import tarfile
import time
from collections.abc import AsyncIterator

from ferry_importer.engine.client import Engine
from ferry_importer.errors import ImporterError

log = logging.getLogger(__name__)

BLOCK = 512
FILE_SIZES = (2 << 10, 8 << 10, 32 << 10, 128 << 10, 512 << 10)  # a spread like a real layer's
SMALL, LARGE = 25, 200  # files in the two probes: about 4 MiB and 28 MiB


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(tarfile.USTAR_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _layer_size(sizes: list[int]) -> int:
    return sum(BLOCK + size + (-size % BLOCK) for size in sizes) + 2 * BLOCK


class ProbeArchive:
    """A docker-save archive of one untagged image, generated piece by piece; `image_id` once it has streamed."""

    def __init__(self, files: int = LARGE, seed: int | None = None) -> None:
        self.sizes = [FILE_SIZES[i % len(FILE_SIZES)] for i in range(files)]
        self.layer_bytes = _layer_size(self.sizes)
        self.image_id: str | None = None
        self._random = random.Random(seed)

    async def pieces(self) -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        layer_dir = f"{self._random.getrandbits(256):064x}"
        yield _header(f"{layer_dir}/layer.tar", self.layer_bytes)
        for index, size in enumerate(self.sizes):
            piece = _header(f"calibration/file-{index}", size) + self._random.randbytes(size) + _padding(size)
            digest.update(piece)
            yield piece
        digest.update(b"\0" * 2 * BLOCK)
        yield b"\0" * 2 * BLOCK + _padding(self.layer_bytes)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"ferry.calibration": "1"}},
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest.hexdigest()}"]},
            }
        ).encode()
        self.image_id = hashlib.sha256(config).hexdigest()
        manifest = json.dumps(
            [{"Config": f"{self.image_id}.json", "RepoTags": None, "Layers": [f"{layer_dir}/layer.tar"]}]
        )
        for name, data in ((f"{self.image_id}.json", config), ("manifest.json", manifest.encode())):
            yield _header(name, len(data)) + data + _padding(len(data))
        yield b"\0" * 2 * BLOCK


async def _timed_load(engine: Engine, archive: ProbeArchive) -> float | None:
    """Seconds from the archive's last byte to the engine's answer; None when the answer does not name the
    image (not an engine that loads as the classic store does). The image is removed again in any case."""
    sent: list[float] = []

    async def body() -> AsyncIterator[bytes]:
        async for piece in archive.pieces():
            yield piece
        sent.append(time.monotonic())

    try:
        loaded = False
        async with engine.post_stream("/images/load", {"quiet": "0"}, body()) as messages:
            async for message in messages:
                loaded = loaded or f"sha256:{archive.image_id}" in str(message.get("stream", ""))
        return time.monotonic() - sent[0] if sent and loaded else None
    finally:
        if archive.image_id:  # a cancel does not cut the removal short
            await asyncio.shield(engine.remove_image(f"sha256:{archive.image_id}"))


def pace_from(small: tuple[int, float], large: tuple[int, float]) -> float | None:
    """Bytes per second from two timed loads: the slope, so the fixed cost of any load (tens of ms here) does
    not count as slowness; the larger load alone when the timings contradict each other."""
    (b1, t1), (b2, t2) = small, large
    if t2 <= 0:
        return None
    if b2 > b1 and t2 > t1:
        return round((b2 - b1) / (t2 - t1), 1)
    return round(b2 / t2, 1)


async def measure_load_pace(engine: Engine) -> float | None:
    """Layer bytes per second the engine loads after it has an archive's last byte; None when it could not
    be measured (the caller then uses what it knows)."""
    timed: list[tuple[int, float]] = []
    try:
        for files in (SMALL, LARGE, SMALL):  # the first load of a quiet engine is slow: the small one twice
            archive = ProbeArchive(files)
            seconds = await _timed_load(engine, archive)
            if seconds is None:
                return None
            timed.append((archive.layer_bytes, seconds))
    except ImporterError as exc:
        log.warning("could not measure how fast this host loads layers: %s", exc.message)
        return None
    pace = pace_from(min(timed[0], timed[2]), timed[1])
    if pace:
        log.info("this host loads layers at %.0f MB/s (two calibration loads, %s)", pace / 1e6, timed)
    return pace
