"""tus 1.0 uploads under /api/uploads/ (creation, termination, expiration) and the content endpoint."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from email.utils import format_datetime

from fastapi import APIRouter, Request, Response

from ferry_contract.api_errors import COMMON, error_responses

from ... import import_jobs as ops
from ... import store as st
from ...errors import Conflict, FerryError, Gone, InvalidRequest, NotFound
from ...metrics import UPLOAD_BYTES
from ...models import Upload, utcnow
from ...security import is_decimal, new_id
from ...services import Services
from ...tus import (
    TUS_EXTENSIONS,
    TUS_VERSION,
    TusError,
    check_version,
    declared_sha256,
    encode_metadata,
    parse_length,
    parse_metadata,
    parse_offset,
    safe_filename,
    with_idle_timeout,
)
from ...views import upload_view
from ..deps import Operator, ServicesDep

log = logging.getLogger("ferry.uploads")
router = APIRouter(prefix="/api/uploads", responses=error_responses(*COMMON, 410, 412, 415, 423, 460, 507))
LOCK_WAIT_S = 10.0
OFFSET_TYPE = "application/offset+octet-stream"


def _tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **extra}


def _expires(upload: Upload) -> str:
    return format_datetime(upload.expires_at, usegmt=True)


async def _live_upload(services, upload_id: str) -> Upload:
    async with services.store.read() as session:
        upload = await session.get(Upload, upload_id)
    if upload is None:
        raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
    if not upload.complete and upload.expires_at < utcnow():
        raise Gone(f"upload {upload_id!r} expired", code="upload_expired")
    return upload


@router.options("", status_code=204)
@router.options("/", status_code=204)
async def discover(_: Operator, services: ServicesDep) -> Response:
    return Response(
        status_code=204,
        headers=_tus_headers(
            **{
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Max-Size": str(services.settings.max_upload_bytes),
            }
        ),
    )


@router.post("", status_code=201)
@router.post("/", status_code=201)
async def create(request: Request, principal: Operator, services: ServicesDep) -> Response:
    check_version(request.headers.get("tus-resumable"))
    length = parse_length(request.headers.get("upload-length"), services.settings.max_upload_bytes)
    if request.headers.get("content-length") not in (None, "0"):
        raise TusError(
            "creation-with-upload is not supported: send the bytes with PATCH", code="invalid_request", status=400
        )
    meta = parse_metadata(request.headers.get("upload-metadata"))
    declared_sha256(meta)
    now = utcnow()
    upload_id = new_id()
    upload = Upload(
        id=upload_id,
        filename=safe_filename(meta.get("filename") or meta.get("name")),
        size=length,
        offset=0,
        complete=length == 0,
        meta=meta,
        created_by=principal.token_id,
        created_at=now,
        updated_at=now,
        completed_at=now if length == 0 else None,
        expires_at=now + timedelta(seconds=services.settings.upload_expiry_s),
    )
    services.parts.create(upload_id)
    try:
        if length == 0:
            upload.sha256 = services.parts.digest(upload_id)
        async with services.store.write() as session:
            session.add(upload)
    except BaseException:
        services.parts.remove(upload_id)
        raise
    return Response(
        status_code=201,
        headers=_tus_headers(Location=f"/api/uploads/{upload_id}", **{"Upload-Expires": _expires(upload)}),
    )


@router.head("/{upload_id}")
async def offset(upload_id: str, _: Operator, services: ServicesDep) -> Response:
    lock = services.upload_lock(upload_id)
    try:  # a PATCH still draining a dropped connection: answer with the offset it ends at
        await asyncio.wait_for(lock.acquire(), LOCK_WAIT_S)
        lock.release()
    except TimeoutError:
        pass
    upload = await _live_upload(services, upload_id)
    headers = _tus_headers(
        **{"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.size), "Upload-Expires": _expires(upload)}
    )
    if upload.meta:
        headers["Upload-Metadata"] = encode_metadata(upload.meta)
    return Response(status_code=200, headers=headers)


@router.patch("/{upload_id}", status_code=204)
async def append(upload_id: str, request: Request, _: Operator, services: ServicesDep) -> Response:
    check_version(request.headers.get("tus-resumable"))
    if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_TYPE:
        raise TusError(f"Content-Type must be {OFFSET_TYPE}", code="unsupported_media_type", status=415)
    client_offset = parse_offset(request.headers.get("upload-offset"))
    lock = services.upload_lock(upload_id)
    try:
        await asyncio.wait_for(lock.acquire(), LOCK_WAIT_S)
    except TimeoutError:
        raise TusError("another request is writing this upload", code="upload_locked", status=423) from None
    try:
        upload = await _live_upload(services, upload_id)
        if client_offset != upload.offset:
            raise Conflict(
                f"Upload-Offset {client_offset} does not match the server's {upload.offset}", code="offset_mismatch"
            )
        declared = request.headers.get("content-length")
        if is_decimal(declared) and client_offset + int(declared) > upload.size:
            raise InvalidRequest("the body goes past Upload-Length", code="upload_overrun", status=400)
        new_offset, stopped = await services.parts.append(
            upload_id,
            upload.offset,
            upload.size,
            with_idle_timeout(request.stream(), services.settings.upload_idle_s),
            checkpoint=lambda landed: _record_offset(services, upload_id, landed),
            awaited=lambda: services.upload_signals.awaited(upload_id),
        )
        UPLOAD_BYTES.inc(new_offset - upload.offset)
        now = utcnow()
        async with services.store.write() as session:
            row = await session.get(Upload, upload_id)
            if row is None:  # terminated meanwhile
                services.parts.remove(upload_id)
                raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
            if new_offset > row.offset:  # updated_at = when bytes last landed: an idle upload is abandoned by it
                row.updated_at = now
            row.offset = new_offset
            row.expires_at = now + timedelta(seconds=services.settings.upload_expiry_s)
            if new_offset == row.size and not row.complete:
                row.sha256 = services.parts.digest(upload_id)
                row.complete = True
                row.completed_at = now
            upload = row
    finally:
        lock.release()
        services.upload_signals.notify(upload_id)
    declared = declared_sha256(upload.meta or {})
    if upload.complete and declared is not None and declared != upload.sha256:
        raise TusError(
            f"the upload's sha256 is {upload.sha256}, its Upload-Metadata declared {declared}",
            code="checksum_mismatch",
            status=460,
        )
    if isinstance(stopped, FerryError):
        raise stopped
    return Response(
        status_code=204,
        headers=_tus_headers(**{"Upload-Offset": str(upload.offset), "Upload-Expires": _expires(upload)}),
    )


async def _record_offset(services: Services, upload_id: str, landed: int) -> None:
    """Bytes of a PATCH still arriving, synced to disk: a backend killed now resumes the upload from here."""
    async with services.store.write() as session:
        row = await session.get(Upload, upload_id)
        if row is not None and not row.complete and landed > row.offset:
            row.offset = landed
            row.updated_at = utcnow()
    services.upload_signals.notify(upload_id)  # content streams waiting for these bytes on this replica


@router.delete("/{upload_id}", status_code=204)
async def terminate(upload_id: str, request: Request, _: Operator, services: ServicesDep) -> Response:
    """Remove the upload; the jobs still pulling it are canceled first (each ends `canceled`, nothing left)."""
    check_version(request.headers.get("tus-resumable"))
    async with services.store.read() as session:
        if await session.get(Upload, upload_id) is None:
            raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
        active = await st.active_jobs_of_upload(session, upload_id)
    for job_id in active:
        await _cancel_quietly(services, job_id)
    lock = services.upload_lock(upload_id)
    async with lock:
        async with services.store.write() as session:
            upload = await session.get(Upload, upload_id)
            if upload is None:
                raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
            await session.delete(upload)
        services.parts.remove(upload_id)
    services.upload_signals.notify(upload_id)  # a stream still waiting ends now
    return Response(status_code=204, headers=_tus_headers())


@router.get("/{upload_id}")
async def info(upload_id: str, _: Operator, services: ServicesDep) -> dict:
    return upload_view(await _live_upload(services, upload_id))


async def _cancel_quietly(services: Services, job_id: str) -> None:
    """Cancel a job whose upload is being removed; an ended job or an unreachable host does not keep it."""
    try:
        await ops.cancel(services, job_id)
    except FerryError as exc:
        log.info("cancel of %s while removing its upload: %s", job_id, exc.message)
