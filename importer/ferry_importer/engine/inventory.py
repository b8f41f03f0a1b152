"""The layers the engine already has, so a load's bar does not promise work the engine will skip.

The engine does not list its layers, but every image's inspect document names its layers bottom-up by diff
id (`RootFS.Layers`); the engine reuses a layer when the archive's layer has the same chain id (its diff id
on the same layers below). `known_layers` asks once per load, for at most `limit` images, a few at a time;
an engine that does not answer makes the set empty (every layer counts as new: the bar is as it was before).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ferry_importer.engine.client import Engine
from ferry_importer.errors import ImporterError

log = logging.getLogger(__name__)

IMAGE_LIMIT = 400
CONCURRENCY = 8


@dataclass(frozen=True)
class KnownLayers:
    diff_ids: frozenset[str] = frozenset()  # 64 hex, without "sha256:"
    chain_ids: frozenset[str] = frozenset()

    def has_chain(self, chain_id: str | None) -> bool:
        return chain_id is not None and chain_id in self.chain_ids


def chain_ids(diff_ids: Sequence[str | None]) -> list[str | None]:
    """The chain id of each layer (OCI image spec: the first layer's is its diff id, each next one is
    sha256 of "<chain below> <diff id>"); None from the first layer whose diff id is unknown on."""
    chains: list[str | None] = []
    below: str | None = None
    for index, diff in enumerate(diff_ids):
        if diff is None or (index and below is None):
            below = None
        elif not index:
            below = diff
        else:
            below = hashlib.sha256(f"sha256:{below} sha256:{diff}".encode()).hexdigest()
        chains.append(below)
    return chains


def from_inspects(documents: Iterable[dict]) -> KnownLayers:
    """The diff ids and chain ids of the images' layers."""
    diffs: set[str] = set()
    chains: set[str] = set()
    for document in documents:
        layers = (document.get("RootFS") or {}).get("Layers") or []
        found = [str(layer).removeprefix("sha256:") for layer in layers if isinstance(layer, str)]
        diffs.update(found)
        chains.update(c for c in chain_ids(found) if c)
    return KnownLayers(frozenset(diffs), frozenset(chains))


async def known_layers(engine: Engine, limit: int = IMAGE_LIMIT) -> KnownLayers:
    """What the engine has now; empty when it cannot say (never an error: this only tunes the bar)."""
    try:
        images = await engine.list_images({})
        ids = [str(image.get("Id")) for image in images[:limit] if image.get("Id")]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def inspect(image_id: str) -> dict:
            async with gate:
                return await engine.inspect_image(image_id) or {}

        return from_inspects(await asyncio.gather(*(inspect(i) for i in ids)))
    except ImporterError as exc:
        log.info("could not list the engine's layers (the bar counts every layer as new): %s", exc.message)
        return KnownLayers()
