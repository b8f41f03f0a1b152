"""Is the image really there? Verification after an import, and the fast-path presence check before one."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from ferry_contract import ArchiveFormat, ImageInfo, ImageReference
from ferry_contract.events import LoadedImage
from ferry_importer.archive.layout import LoadPlan
from ferry_importer.engine.client import Engine
from ferry_importer.engine.fastpath import FINGERPRINT_LABEL, Entry, ImportIndex, fingerprint
from ferry_importer.engine.transfer import LoadOutcome
from ferry_importer.errors import VerificationFailed

STUB_RATIO = 0.1
STUB_FLOOR = 1 << 20


def plausible_size(image_size: int, content_bytes: int) -> bool:
    """A stored image far smaller than the file data the archive carried is a stub, not an import
    (the known failure: success reported, a few kB stored)."""
    if content_bytes < STUB_FLOOR:
        return True
    return image_size >= content_bytes * STUB_RATIO


def _info(ref: str, inspect: dict, *, already_present: bool | None = None) -> ImageInfo:
    return ImageInfo(
        ref=ref,
        id=inspect["Id"],
        size=int(inspect.get("Size") or 0),
        tags=list(inspect.get("RepoTags") or []),
        already_present=already_present,
    )


async def verify_import(engine: Engine, image_id: str, target: ImageReference | None, content_bytes: int) -> ImageInfo:
    """Check the untagged result of an import, then tag it: the tag only ever names a verified image."""
    assert target is not None
    found = await engine.inspect_image(image_id)
    if found is None:
        raise VerificationFailed(f"the engine reported image {image_id} but does not have it")
    _check_size(found, content_bytes, image_id)
    await engine.tag(image_id, target.repository, target.tag)
    tagged = await engine.inspect_image(str(target))
    if tagged is None or tagged["Id"] != image_id:
        raise VerificationFailed(f"tag {target} does not point to the imported image {image_id}")
    return _info(str(target), tagged)


async def verify_load(
    engine: Engine, outcome: LoadOutcome, plan: LoadPlan, target: ImageReference | None, content_bytes: int
) -> ImageInfo:
    """Every tag the archive declared exists; the name given (if any) is added; the image is not a stub."""
    ids = list(dict.fromkeys(outcome.image_ids + [i.image_id for i in plan.images if i.image_id]))
    for ref in plan.repo_tags + outcome.refs:
        found = await engine.inspect_image(ref)
        if found is None:
            raise VerificationFailed(f"the archive's tag {ref} is missing after the load")
        ids.append(found["Id"])
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise VerificationFailed("the engine finished the load without naming any image")
    primary = ids[0]
    if target is not None:
        if len(ids) > 1:
            raise VerificationFailed(f"the archive produced {len(ids)} images; cannot tell which one to name {target}")
        await engine.tag(primary, target.repository, target.tag)
    ref = str(target) if target else (plan.repo_tags[0] if plan.repo_tags else primary)
    found = await engine.inspect_image(ref)
    if found is None or found["Id"] != primary:
        raise VerificationFailed(f"{ref} does not point to the loaded image {primary}")
    if len(ids) == 1:
        _check_size(found, content_bytes, ref)
    info = _info(ref, found)
    loaded = []
    for image_id in ids:
        details = found if image_id == primary else await engine.inspect_image(image_id)
        loaded.append(LoadedImage(id=image_id, tags=list((details or {}).get("RepoTags") or [])))
    return info.model_copy(update={"images": loaded})


def _check_size(found: dict, content_bytes: int, name: str) -> None:
    size = int(found.get("Size") or 0)
    if not plausible_size(size, content_bytes):
        raise VerificationFailed(
            f"image {name} is only {size} bytes although the archive carried {content_bytes} bytes of files",
            "the engine reported success but stored a stub",
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def find_present(
    engine: Engine,
    index: ImportIndex,
    target: ImageReference | None,
    sha: str | None,
    size: int | None,
    fmt: ArchiveFormat,
    changes: list[str],
    path: Path | None = None,
) -> ImageInfo | None:
    """The image this archive would produce, if the engine already has it under the wanted names."""
    ref = str(target) if target else None
    if target is not None and sha is not None:
        found = await engine.inspect_image(str(target))
        labels = ((found or {}).get("Config") or {}).get("Labels") or {}
        if (
            found
            and fmt is not ArchiveFormat.LOAD
            and labels.get(FINGERPRINT_LABEL) == fingerprint(sha, "import", changes)
        ):
            return _info(str(target), found, already_present=True)
    candidates = index.entries_for(ref, sha)
    if sha is None:
        # A new copy of an archive that produced this tag before: only a same-size file can be the same archive.
        if path is None or not any(e.size == size for e in candidates):
            return None
        sha = await asyncio.to_thread(sha256_file, path)
    for entry in candidates:
        if entry.sha256 == sha and _same_job(entry, fmt, changes):
            present = await _entry_present(engine, entry, ref)
            if present is not None:
                return present
    return None


def _same_job(entry: Entry, fmt: ArchiveFormat, changes: list[str]) -> bool:
    if fmt is not ArchiveFormat.AUTO and entry.mode != fmt.value:
        return False
    return entry.fingerprint == fingerprint(entry.sha256, entry.mode, changes if entry.mode == "import" else [])


async def _entry_present(engine: Engine, entry: Entry, ref: str | None) -> ImageInfo | None:
    image = await engine.inspect_image(entry.image_id)
    if image is None:
        return None
    for tag in entry.tags:
        found = await engine.inspect_image(tag)
        if found is None or found["Id"] != entry.image_id:
            return None
    if ref is not None and ref not in entry.tags:
        return None
    name = ref or (entry.tags[0] if entry.tags else entry.image_id)
    return _info(name, await engine.inspect_image(name) or image, already_present=True)
