"""The content endpoint importers pull an upload from: a signed link, Range, and an upload still arriving."""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from ferry_contract.api_errors import COMMON, error_responses

from ...content import (
    Landed,
    Unsatisfiable,
    UploadAbandoned,
    UploadGone,
    is_abandoned,
    parse_range,
    read_file,
    repr_digest,
    stream_growing,
)
from ...errors import Conflict, Gone, NotFound, Unauthorized
from ...models import Upload, utcnow
from ...security import Role, check_content_link
from ...services import Services
from ..deps import ServicesDep, authenticate, require

log = logging.getLogger("ferry.content")
router = APIRouter(prefix="/api/uploads", responses=error_responses(*COMMON, 410, 416))
RESPONSES: dict[int | str, dict] = {206: {"description": "The byte range asked for."}}


async def _look(services: Services, upload_id: str) -> Landed | None:
    async with services.store.read() as session:
        row = await session.get(Upload, upload_id)
    return None if row is None else Landed(row.offset, row.complete, row.updated_at)


def _content_headers(upload: Upload) -> dict[str, str]:
    """An upload's ETag is its id (its bytes never change once landed, so a resume before and after the
    upload completes is of the same entity); Upload-Offset / Upload-Length say how much has arrived."""
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{upload.id}"',
        "Content-Type": "application/octet-stream",
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.size),
        "Cache-Control": "no-store",
    }
    if upload.complete and upload.sha256:
        headers["Repr-Digest"] = repr_digest(upload.sha256)
    return headers


@router.get("/{upload_id}/content", responses=RESPONSES)
@router.head("/{upload_id}/content", operation_id="content_head", responses=RESPONSES)
async def content(upload_id: str, request: Request, services: ServicesDep, token: str | None = None) -> Response:
    """The bytes for importers: a short-lived signed `token` (or an operator bearer token), Range supported.

    An upload still arriving is served as it lands, up to its declared length: the response waits for the
    next bytes. If the upload lands nothing for FERRY_UPLOAD_IDLE_S the transfer breaks off and later
    requests are answered 409 `upload_abandoned`. `Upload-Offset` / `Upload-Length` tell how much has
    arrived; `Repr-Digest` (sha-256) is sent once the upload is complete."""
    if token is not None:
        problem = check_content_link(services.content_key, upload_id, token)
        if problem:
            raise Unauthorized(problem, code="bad_content_token")
    else:
        await require(Role.operator)(await authenticate(request, services))
    async with services.store.read() as session:
        upload = await session.get(Upload, upload_id)
    if upload is None:
        raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
    now = utcnow()
    if is_abandoned(upload.complete, upload.updated_at, now, services.settings.upload_idle_s):
        raise Conflict(
            f"upload {upload_id!r} stopped at {upload.offset} of {upload.size} bytes and was abandoned",
            code="upload_abandoned",
        )
    if not upload.complete and upload.expires_at < now:
        raise Gone(f"upload {upload_id!r} expired", code="upload_expired")
    headers = _content_headers(upload)
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != headers["ETag"]:
        range_header = None  # the client's copy is of another entity: send the whole of this one
    try:
        wanted = parse_range(range_header, upload.size)
    except Unsatisfiable:
        body = json.dumps(
            {
                "error": {
                    "code": "range_not_satisfiable",
                    "message": f"the Range lies outside the upload's {upload.size} bytes",
                }
            }
        ).encode()
        return Response(
            body,
            status_code=416,
            media_type="application/json",
            headers={
                **{k: v for k, v in headers.items() if k != "Content-Type"},
                "Content-Range": f"bytes */{upload.size}",
            },
        )
    start, end, status = 0, upload.size - 1, 200
    if wanted is not None:
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{upload.size}"
    headers["Content-Length"] = str(max(0, end - start + 1))
    path = services.parts.path(upload_id)
    if upload.size == 0 or request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    if upload.complete:
        return StreamingResponse(read_file(path, start, end), status_code=status, headers=headers)
    return StreamingResponse(_growing(services, upload_id, start, end), status_code=status, headers=headers)


async def _growing(services: Services, upload_id: str, start: int, end: int):
    try:
        async for block in stream_growing(
            services.parts.path(upload_id),
            start,
            end,
            look=lambda: _look(services, upload_id),
            signals=services.upload_signals,
            upload_id=upload_id,
            idle_s=services.settings.upload_idle_s,
            now=utcnow,
        ):
            yield block
    except UploadAbandoned:
        log.info(
            "upload %s landed nothing for %gs: its content stream ends", upload_id, services.settings.upload_idle_s
        )
        raise
    except UploadGone:
        log.info("upload %s was removed while it was being served", upload_id)
        raise
