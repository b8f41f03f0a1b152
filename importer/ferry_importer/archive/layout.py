"""What kind of archive this is, decided from tar member names — pure functions, no I/O.

`classify()` looks at the first members of the decompressed stream (docker-save archives put
manifest.json last, so it cannot wait for it). `load_verdict()` runs at the end of the stream, before
the engine has been sent the end-of-archive marker, and refuses what the engine would mis-handle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ferry_importer.archive.tarstream import Member
from ferry_importer.errors import MissingManifest, UnsupportedLayout

HEX64 = re.compile(r"^(?:sha256:)?[0-9a-f]{64}$")
DOCKER_METADATA = {"manifest.json", "repositories", "index.json", "oci-layout"}
OCI_LOAD_MIN_ENGINE = (25, 0)  # Docker Engine 25.0 loads OCI image layouts that carry no manifest.json
CAPTURED = frozenset({"manifest.json", "index.json"})


class Layout(StrEnum):
    ROOTFS = "rootfs"
    DOCKER_LEGACY = "docker-legacy"  # docker save up to Engine 24: <hex>/layer.tar, <hex>.json
    OCI = "oci"  # blobs/sha256/... (docker save from Engine 25 on, or a pure OCI image layout)
    DOCKER_ARCHIVE = "docker-archive"  # written by other tools: <hex>.tar layers, or metadata first

    @property
    def loads(self) -> bool:
        return self is not Layout.ROOTFS


def classify(members: Sequence[Member]) -> Layout:
    """Decide from the first significant member: archives from `docker save` and friends never start with
    ordinary filesystem paths, and rootfs tarballs never start with image metadata."""
    for member in members:
        if member.name in ("", "."):
            continue
        top, _, rest = member.name.partition("/")
        if top == "blobs":
            return Layout.OCI
        if top in DOCKER_METADATA and not rest:
            return Layout.DOCKER_ARCHIVE
        if HEX64.match(top):
            return Layout.DOCKER_LEGACY
        if top.endswith((".json", ".tar")) and HEX64.match(top.rsplit(".", 1)[0]) and not rest:
            return Layout.DOCKER_LEGACY if top.endswith(".json") else Layout.DOCKER_ARCHIVE
        return Layout.ROOTFS
    return Layout.ROOTFS


@dataclass(frozen=True)
class ArchiveImage:
    """One image a docker archive declares in manifest.json."""

    config: str
    repo_tags: tuple[str, ...]
    layers: tuple[str, ...] = ()  # layer files bottom-up, as manifest.json names them

    @property
    def image_id(self) -> str | None:
        """The image id is the sha256 of the config blob, which both layouts name after it."""
        name = self.config.rsplit("/", 1)[-1].removesuffix(".json")
        if HEX64.match(name):
            return name if name.startswith("sha256:") else f"sha256:{name}"
        return None


@dataclass(frozen=True)
class LoadPlan:
    images: tuple[ArchiveImage, ...] = field(default_factory=tuple)

    @property
    def repo_tags(self) -> list[str]:
        return [tag for image in self.images for tag in image.repo_tags]


def load_verdict(names: set[str], captured: dict[str, bytes], engine_version: tuple[int, int]) -> LoadPlan:
    """Check, at the end of the stream, that the engine can load this archive; say what it will create."""
    manifest = captured.get("manifest.json")
    if manifest is None and "manifest.json" in names:
        raise MissingManifest("the archive's manifest.json is too large to be a docker image manifest")
    if manifest is None:
        if {"index.json", "oci-layout"} <= names:
            if engine_version < OCI_LOAD_MIN_ENGINE:
                need = ".".join(map(str, OCI_LOAD_MIN_ENGINE))
                have = ".".join(map(str, engine_version))
                raise UnsupportedLayout(
                    f"this is an OCI image layout without manifest.json: loading it needs Docker Engine {need} "
                    f"or newer (this engine is {have})"
                )
            return LoadPlan()
        raise MissingManifest(
            "the archive looks like a docker image archive but has no manifest.json "
            "(it is incomplete; it cannot be loaded, and importing it as a filesystem would be wrong)"
        )
    return LoadPlan(tuple(parse_manifest(manifest)))


def parse_manifest(data: bytes) -> list[ArchiveImage]:
    try:
        entries = json.loads(data)
        if not isinstance(entries, list) or not entries:
            raise ValueError("expected a non-empty list")
        return [
            ArchiveImage(
                config=str(entry["Config"]),
                repo_tags=tuple(str(t) for t in entry.get("RepoTags") or ()),
                layers=tuple(str(layer) for layer in entry.get("Layers") or ()),
            )
            for entry in entries
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise MissingManifest("the archive's manifest.json is not a valid docker image manifest", str(exc)) from None


def parse_engine_version(text: str) -> tuple[int, int]:
    """`20.10.24+dfsg1` → (20, 10); unknown formats count as very new rather than blocking a load."""
    match = re.match(r"^(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else (999, 0)
