"""The engine's loading stage of a docker-save archive, followed layer by layer — pure, no I/O.

After it has the whole archive, `POST /images/load?quiet=0` on the classic store says
`{"status":"Loading layer","progressDetail":{"current":N,"total":T},"id":"<12 hex>"}` several times per
layer it loads (T is the size of that layer's file in the archive; the id is the layer's chain id, which
the archive does not name). A layer the engine already has is skipped without a word; each image ends with
`Loaded image: REF` (or `Loaded image ID: sha256:…` when it has no tag).

`plan_layers()` lists, from manifest.json, the image configs and the member sizes the tar walker saw, the
layers the engine will consider, in its order. `LayerTracker` matches the engine's lines to that plan by
the diff id they start with (by size where the archive does not say), and
counts layers it skipped as done as soon as the engine moves past them, so the count only grows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ferry_importer.archive.layout import HEX64, ArchiveImage
from ferry_importer.archive.tarstream import normalise
from ferry_importer.engine.inventory import KnownLayers, chain_ids


def engine_reports_layers(info: Mapping) -> bool:
    """The classic store (a graph driver, named in /info) reports "Loading layer"; the containerd image store
    says only "Loaded image", so there the stage after the last byte stays an elapsed-time `finalizing`."""
    status = info.get("DriverStatus") or []
    containerd = any(isinstance(row, list) and "io.containerd.snapshotter" in " ".join(map(str, row)) for row in status)
    return bool(info.get("Driver")) and not containerd


@dataclass(frozen=True)
class PlannedLayer:
    size: int
    image: int  # index in manifest.json of the first image that needs this layer
    short_id: str | None = None  # the 12 hex the engine prints: the start of the layer's diff id
    chain_id: str | None = None  # how the engine knows whether it has the layer already
    present: bool = False  # the engine has it: it skips the layer without a word


def blob_diff_id(name: str) -> str | None:
    """The diff id a layer file's name gives (an OCI layout's `blobs/sha256/<hex>`, a `<hex>.tar`), if any."""
    stem = normalise(name).removeprefix("blobs/sha256/").removesuffix(".tar")
    return stem if HEX64.match(stem) else None


def diff_ids(image: ArchiveImage, configs: Mapping[str, bytes]) -> list[str | None]:
    """Each layer's diff id: from the image config when the walker kept it, else from names that are
    digests of uncompressed layers (`blobs/sha256/<hex>`, `<hex>.tar`); None where neither says."""
    config = configs.get(normalise(image.config))
    if config is not None:
        try:
            found = json.loads(config)["rootfs"]["diff_ids"]
            if isinstance(found, list) and len(found) == len(image.layers):
                return [str(d).removeprefix("sha256:") for d in found]
        except (ValueError, KeyError, TypeError):
            pass
    return [blob_diff_id(path) for path in image.layers]


def plan_layers(
    images: Sequence[ArchiveImage], sizes: Mapping[str, int], configs: Mapping[str, bytes] | None = None
) -> list[PlannedLayer] | None:
    """Images in manifest order, each image's layers bottom-up; a layer on the same layers below (the same
    chain) only once, as the engine loads it only once. None when a layer's size is unknown."""
    chains: dict[tuple[int, str], int] = {}
    plan: list[PlannedLayer] = []
    for index, image in enumerate(images):
        parent = -1
        diffs = diff_ids(image, configs or {})
        for path, diff, chain in zip(image.layers, diffs, chain_ids(diffs)):
            key = (parent, diff or normalise(path))
            if key in chains:
                parent = chains[key]
                continue
            size = sizes.get(normalise(path))
            if size is None:
                return None
            parent = chains[key] = len(chains)
            plan.append(PlannedLayer(size, index, diff[:12] if diff else None, chain))
    return plan


def mark_present(plan: list[PlannedLayer] | None, known: KnownLayers) -> list[PlannedLayer] | None:
    """The plan with the layers the engine already has (by chain id) marked: it will skip them."""
    if plan is None:
        return None
    return [replace(layer, present=known.has_chain(layer.chain_id)) for layer in plan]


class NamedPresence:
    """While the archive streams: the layer bytes the engine already has, where the archive names its layer
    files by diff id (docker save from Engine 25 on). Judged by diff id alone (the chain is known only at
    the end); the plan then says exactly. Older saves name layers otherwise: nothing is known before the end."""

    def __init__(self, known: KnownLayers) -> None:
        self.known = known
        self.present_bytes = 0
        self._seen = 0

    def update(self, members: Sequence[tuple[str, int]]) -> int:
        """Look at the layer files that passed since the last call (`members` only grows)."""
        fresh = members[self._seen :]
        self._seen += len(fresh)
        for name, size in fresh:
            diff = blob_diff_id(name)
            if diff is not None and diff in self.known.diff_ids:
                self.present_bytes += size
        return self.present_bytes


class LayerTracker:
    """What the engine has loaded so far: layers done (loaded or skipped) and layer bytes done.

    Without a plan (unknown sizes, or lines arriving before the plan) it still counts the layers the
    engine finished, but has no total."""

    def __init__(self) -> None:
        self.plan: list[PlannedLayer] = []
        self.planned = False
        self._total_bytes = 0
        self._refs: dict[str, int] = {}
        self._done = 0  # plan[:_done] is done
        self._done_bytes = 0
        self._unplanned = 0  # layers finished that the plan does not list
        self._current_id: str | None = None
        self._current: int | None = None  # index in the plan of the layer loading now
        self._current_bytes = 0
        self.reported = 0  # planned layers the engine named in a "Loading layer" line (not skipped)
        self._new_total = 0  # bytes of the planned layers the engine does not have yet: its real work
        self._new_done = 0

    def set_plan(self, plan: list[PlannedLayer] | None, images: Sequence[ArchiveImage]) -> None:
        if plan is None or self._current_id is not None:
            return
        self.plan, self.planned = plan, True
        self._total_bytes = sum(layer.size for layer in plan)
        self._new_total = sum(layer.size for layer in plan if not layer.present)
        for index, image in enumerate(images):
            for ref in image.repo_tags:
                self._refs.setdefault(ref, index)
            if image.image_id:
                self._refs.setdefault(image.image_id, index)

    @property
    def all_new_reported(self) -> bool:
        """The engine loaded every planned layer it did not have, each with its own lines: the time it took
        measures how fast it loads `new_bytes_total` bytes."""
        return self.planned and self._new_total > 0 and self.reported == sum(not x.present for x in self.plan)

    @property
    def new_bytes_total(self) -> int:
        return self._new_total

    @property
    def new_bytes_done(self) -> int:
        current = self._current is not None and not self.plan[self._current].present
        return self._new_done + (self._current_bytes if current else 0)

    def new_share(self) -> float | None:
        """The share of the layer bytes the engine must really load (None before the plan is known)."""
        if not self.planned:
            return None
        return self._new_total / self._total_bytes if self._total_bytes else 0.0

    @property
    def layers_done(self) -> int:
        """With a plan, layers beyond it (the archive said otherwise) are not counted: never more than the total."""
        return self._done if self.planned else self._unplanned

    @property
    def layers_total(self) -> int | None:
        return len(self.plan) if self.planned else None

    @property
    def bytes_done(self) -> int:
        return self._done_bytes + (self._current_bytes if self._current is not None else 0)

    @property
    def bytes_total(self) -> int | None:
        return self._total_bytes if self.planned else None

    def fraction(self) -> float:
        """Share of the engine's real work done: the bytes of the layers it did not have; a plan of nothing
        but empty layers, or of layers the engine has, counts by layers."""
        if not self.planned or not self.plan:
            return 0.0
        if self._new_total:
            return min(1.0, self.new_bytes_done / self._new_total)
        return self._done / len(self.plan)

    def layer(self, layer_id: str, current: int, total: int) -> None:
        """One "Loading layer" line."""
        if layer_id == self._current_id:
            self._advance_current(current)
            return
        self._complete_current()
        self._current_id = layer_id
        self._current_bytes = 0
        index = self._match(layer_id, total)
        if index is None:
            self._current = None
            return
        self._skip_to(index)
        self._current = index
        self.reported += 1
        self._advance_current(current)

    def loaded(self, ref: str) -> None:
        """A "Loaded image" line: every layer of that image and of the images before it is in."""
        image = self._refs.get(ref)
        if image is None:
            return
        end = self._done
        while end < len(self.plan) and self.plan[end].image <= image:
            end += 1
        self._skip_to(end)

    def finish(self) -> None:
        """The engine's answer has ended without an error: every layer is there."""
        self._complete_current()
        self._skip_to(len(self.plan))

    def _advance_current(self, current: int) -> None:
        if self._current is not None:
            size = self.plan[self._current].size
            self._current_bytes = max(self._current_bytes, min(max(current, 0), size))

    def _complete_current(self) -> None:
        if self._current is not None:
            self._skip_to(self._current + 1)
        elif self._current_id is not None:
            self._unplanned += 1
        self._current_id = None

    def _match(self, layer_id: str, total: int) -> int | None:
        """The next layer not yet done that the engine's id names (the layers before it were skipped); where
        the archive does not tell diff ids, the next one of that size; else the next one in order; None past
        the end of the plan."""
        ahead = range(self._done, len(self.plan))
        for index in ahead:
            if self.plan[index].short_id == layer_id:
                return index
        for index in ahead:
            if self.plan[index].short_id is None and self.plan[index].size == total:
                return index
        return self._done if self._done < len(self.plan) else None

    def _skip_to(self, end: int) -> None:
        for index in range(self._done, end):
            self._done_bytes += self.plan[index].size
            self._new_done += 0 if self.plan[index].present else self.plan[index].size
            if index == self._current:
                self._current, self._current_id, self._current_bytes = None, None, 0
        self._done = max(self._done, end)
