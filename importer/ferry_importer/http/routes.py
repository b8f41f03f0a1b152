"""The importer's routes: jobs, images, host facts and the outbox (for operators)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from ferry_contract import ImportJobRequest, ImportJobView, JobState
from ferry_contract.api_errors import COMMON, error_responses
from ferry_importer import metrics
from ferry_importer.callbacks import outbox
from ferry_importer.engine import removal
from ferry_importer.engine.fastpath import ImportIndex
from ferry_importer.http.deps import ApiError, RuntimeDep

public = APIRouter(responses=error_responses(500))
router = APIRouter(prefix="/v1", responses=error_responses(*COMMON, 502))
monitoring = APIRouter(responses=error_responses(*COMMON))


def _version() -> str:
    try:
        return version("ferry-importer")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


@public.get("/healthz", summary="Liveness (no token needed)")
async def healthz() -> dict:
    return {"status": "ok"}


@monitoring.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics(runtime: RuntimeDep) -> Response:
    counts = await runtime.db.call(outbox.counts)
    manager = runtime.manager
    body = metrics.render(len(manager.running_ids), len(manager.queued_ids), counts)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


class JobList(BaseModel):
    jobs: list[ImportJobView]


@router.post(
    "/imports", status_code=202, response_model=ImportJobView, summary="Start an import (idempotent by job_id)"
)
async def create_import(request: ImportJobRequest, runtime: RuntimeDep, response: Response) -> ImportJobView:
    view, created = await runtime.manager.accept(request)
    response.headers["Location"] = f"/v1/imports/{view.job_id}"
    if not created:
        response.headers["X-Ferry-Existing-Job"] = "1"
    return view


@router.get("/imports", response_model=JobList, summary="Recent jobs, newest first")
async def list_imports(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    state: JobState | None = None,
) -> JobList:
    return JobList(jobs=await runtime.manager.recent(limit=limit, state=state))


@router.get("/imports/{job_id}", response_model=ImportJobView, summary="One job's snapshot")
async def get_import(job_id: str, runtime: RuntimeDep) -> ImportJobView:
    view = await runtime.manager.view(job_id)
    if view is None:
        raise ApiError(404, "not_found", f"no job {job_id!r} on this importer")
    return view


@router.delete(
    "/imports/{job_id}",
    status_code=202,
    response_model=ImportJobView,
    summary="Cancel: abort download and engine request, remove temp files, leave no image",
)
async def cancel_import(job_id: str, runtime: RuntimeDep) -> ImportJobView:
    view = await runtime.manager.cancel(job_id)
    if view is None:
        raise ApiError(404, "not_found", f"no job {job_id!r} on this importer")
    return view


class ImageEntry(BaseModel):
    tags: list[str]
    id: str
    size: int
    created: datetime
    archive_sha256: str | None = Field(description="sha256 of the archive ferry imported it from, when known.")


class ImageList(BaseModel):
    images: list[ImageEntry]


@router.get("/images", response_model=ImageList, summary="The engine's tagged images")
async def list_images(runtime: RuntimeDep) -> ImageList:
    images = await runtime.engine.list_images({"dangling": ["false"]})
    index = ImportIndex(runtime.settings.data_dir)
    entries = []
    for image in images:
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        if not tags:
            continue
        entries.append(
            ImageEntry(
                tags=tags,
                id=image["Id"],
                size=int(image.get("Size") or 0),
                created=datetime.fromtimestamp(int(image.get("Created") or 0), tz=UTC),
                archive_sha256=_archive_sha(index, image["Id"], tags),
            )
        )
    return ImageList(images=entries)


class RemovedImage(BaseModel):
    id: str
    removed: list[str] = Field(description="Tags untagged and image ids deleted, as the engine reported them.")


@router.delete(
    "/images/{image_id}",
    response_model=RemovedImage,
    responses=error_responses(404, 409, 422),
    summary="Remove an image by id: never one a queued or running job imports to, nor one a container uses",
)
async def remove_image(image_id: str, runtime: RuntimeDep) -> RemovedImage:
    """404 `image_not_found`; 409 `image_in_use` (a queued or running job imports to one of its tags),
    `image_has_containers`, `remove_failed` (the engine refused); 422 `invalid_image_id`."""
    try:
        done = await removal.remove_image(runtime.engine, image_id, await runtime.manager.active_targets())
    except removal.RemovalRefused as refused:
        raise ApiError(refused.status, refused.code, refused.message) from None
    return RemovedImage(id=done.id, removed=done.removed)


def _archive_sha(index: ImportIndex, image_id: str, tags: list[str]) -> str | None:
    for tag in tags:
        for entry in index.entries_for(tag):
            if entry.image_id == image_id:
                return entry.sha256
    return None


@router.get("/host", summary="Engine version, storage driver, free disk, jobs")
async def host(runtime: RuntimeDep) -> dict:
    facts = await runtime.status.facts()
    counts = await runtime.db.call(outbox.counts)
    manager = runtime.manager
    return {
        "name": runtime.settings.name,
        "importer_version": _version(),
        "engine": {
            key: facts[key]
            for key in ("engine_reachable", "engine_version", "engine_api_version", "storage_driver", "engine_root")
        },
        "disk_free_bytes": facts["disk_free_bytes"],
        "spool_free_bytes": facts["spool_free_bytes"],
        "max_concurrent": runtime.settings.max_concurrent,
        "running": manager.running_ids,
        "queued": [{"job_id": job_id, "position": manager.position(job_id)} for job_id in manager.queued_ids],
        "outbox": counts,
    }


class MessageView(BaseModel):
    msg_id: str
    job_id: str
    seq: int
    type: str
    status: str
    url: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: float
    next_attempt_at: float
    finished_at: float | None


def _message_view(message: outbox.Message) -> MessageView:
    return MessageView(**{name: getattr(message, name) for name in MessageView.model_fields})


@router.get("/outbox", summary="Callbacks in the outbox (operators)")
async def list_outbox(
    runtime: RuntimeDep,
    job_id: str | None = None,
    status: outbox.Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    messages = await runtime.db.call(outbox.list_messages, job_id=job_id, status=status, limit=limit)
    counts = await runtime.db.call(outbox.counts)
    return {"counts": counts, "messages": [_message_view(m) for m in messages]}


@router.get("/outbox/{msg_id}", summary="One callback with every delivery attempt")
async def get_outbox_message(msg_id: str, runtime: RuntimeDep) -> dict:
    message = await runtime.db.call(outbox.find, msg_id)
    if message is None:
        raise ApiError(404, "not_found", f"no callback {msg_id!r} in the outbox")
    attempts = await runtime.db.call(outbox.attempts_of, message.id)
    return {"message": _message_view(message), "body": message.body, "attempts": [a.__dict__ for a in attempts]}


class Resend(BaseModel):
    msg_id: str | None = None
    job_id: str | None = None
    since: datetime | None = Field(default=None, description="Every expired or gone callback created since then.")


@router.post("/outbox/resend", summary="Send expired or given-up (410) callbacks again, same webhook-id")
async def resend(body: Resend, runtime: RuntimeDep) -> dict:
    if body.msg_id is None and body.job_id is None and body.since is None:
        raise ApiError(422, "invalid_request", "give msg_id, job_id or since")
    since = body.since.timestamp() if body.since else None
    count = await runtime.db.call(outbox.requeue, now=time.time(), msg_id=body.msg_id, job_id=body.job_id, since=since)
    runtime.worker.wake()
    return {"requeued": count}
