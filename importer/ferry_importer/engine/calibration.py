"""How fast this host's engine loads layers, measured once, before its first docker-save load.

A load's bar splits between the stream and the engine loading the layers after the last byte; how long the
second stage takes depends on the host (storage driver, disks, CPU) by several times. Before a host has loaded
anything, `measure_load_pace` loads a generated archive (one untagged image of one layer, about 28 MiB of random
files from 2 KiB to 512 KiB) and times the engine from its first "Loading layer" line to the end of its answer (the
fixed cost before it starts applying is not slowness), then removes the image. The
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
FILES = 200  # 40 of each size: about 28 MiB


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

    def __init__(self, files: int = FILES, seed: int | None = None) -> None:
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


async def _timed_load(engine: Engine, archive: ProbeArchive) -> tuple[int, float] | None:
    """Layer bytes and seconds from the engine's first "Loading layer" line to its answer's end: how fast it
    applies a layer, without the fixed cost before it starts. None when the engine does not load as the classic
    store does (no such lines, or an answer that does not name the image). The image is removed in any case."""
    first: tuple[float, int] | None = None
    try:
        loaded = False
        async with engine.post_stream("/images/load", {"quiet": "0"}, archive.pieces()) as messages:
            async for message in messages:
                detail = message.get("progressDetail") or {}
                if first is None and message.get("status") == "Loading layer" and "current" in detail:
                    first = (time.monotonic(), int(detail["current"]))
                loaded = loaded or f"sha256:{archive.image_id}" in str(message.get("stream", ""))
        if first is None or not loaded:
            return None
        return archive.layer_bytes - first[1], time.monotonic() - first[0]
    finally:
        if archive.image_id:  # a cancel does not cut the removal short
            await asyncio.shield(engine.remove_image(f"sha256:{archive.image_id}"))


async def measure_load_pace(engine: Engine) -> float | None:
    """Layer bytes per second the engine loads after it has an archive's last byte; None when it could not
    be measured (the caller then uses what it knows)."""
    try:
        timed = await _timed_load(engine, ProbeArchive())
    except ImporterError as exc:
        log.warning("could not measure how fast this host loads layers: %s", exc.message)
        return None
    if timed is None or timed[0] <= 0 or timed[1] <= 0:
        return None
    pace = round(timed[0] / timed[1], 1)
    log.info("this host loads layers at %.0f MB/s (a calibration load of %.0f MB)", pace / 1e6, timed[0] / 1e6)
    return pace
