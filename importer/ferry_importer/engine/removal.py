"""Removing an image an operator no longer wants: never one a queued or running job imports to, never one a
container uses, never forced. The decisions are pure; `remove_image` asks the engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ferry_contract import InvalidReference, parse_reference
from ferry_importer.engine.client import Engine
from ferry_importer.errors import EngineError, ImporterError

IMAGE_ID = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


@dataclass
class RemovalRefused(Exception):
    """Why an image stays: a stable code and one line for the operator."""

    status: int
    code: str
    message: str


@dataclass
class Removed:
    id: str
    removed: list[str] = field(default_factory=list)  # tags untagged and image ids deleted, as the engine says


def _normal(ref: str) -> str | None:
    try:
        return str(parse_reference(ref))
    except InvalidReference:
        return None


def in_use_by(tags: list[str], targets: dict[str, str | None]) -> str | None:
    """The queued or running job that imports to one of the image's tags, if any."""
    names = {_normal(tag) for tag in tags} - {None}
    for job_id, target in targets.items():
        if target is not None and _normal(target) in names:
            return job_id
    return None


async def remove_image(engine: Engine, image_id: str, targets: dict[str, str | None]) -> Removed:
    """Untag every tag of the image (the last one deletes it), then delete what is left by id."""
    if not IMAGE_ID.fullmatch(image_id):
        raise RemovalRefused(422, "invalid_image_id", f"{image_id!r} is not an image id (sha256:<hex>)")
    info = await engine.inspect_image(image_id)
    if info is None:
        raise RemovalRefused(404, "image_not_found", f"the engine has no image {image_id}")
    full_id = str(info.get("Id") or image_id)
    tags = [t for t in info.get("RepoTags") or [] if t != "<none>:<none>"]
    job = in_use_by(tags, targets)
    if job is not None:
        raise RemovalRefused(409, "image_in_use", f"job {job} is importing to {', '.join(tags)}: cancel it or wait")
    if containers := await engine.containers_using(full_id):
        raise RemovalRefused(
            409, "image_has_containers", f"{len(containers)} container(s) use it, e.g. {containers[0][:12]}"
        )
    result = Removed(full_id)
    try:
        for ref in [*tags, full_id]:
            for entry in await engine.delete_image(ref) or []:
                result.removed += [str(v) for k, v in entry.items() if k in ("Untagged", "Deleted")]
            if ref != full_id and await engine.inspect_image(full_id) is None:
                break  # the last tag took the image with it
    except ImporterError as exc:  # the engine refused half-way (a container appeared) or went away
        conflict = isinstance(exc, EngineError) and "HTTP 409" in (exc.detail or "")
        raise RemovalRefused(409 if conflict else 502, "remove_failed", exc.message) from None
    return result
