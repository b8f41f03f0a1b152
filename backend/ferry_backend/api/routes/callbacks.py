"""POST /api/callbacks/{host}: signed progress from importers (authenticated by signature, not bearer)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ...errors import Conflict, Unauthorized
from ...metrics import CALLBACKS, CALLBACKS_REFUSED
from ..deps import ServicesDep

router = APIRouter()
MAX_CALLBACK_BYTES = 256 * 1024


@router.post("/api/callbacks/{host}")
async def callback(host: str, request: Request, services: ServicesDep) -> dict:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CALLBACK_BYTES:
            raise Conflict("callback body too large", code="callback_too_large", status=413)
    try:
        outcome = await services.receiver.receive(host, bytes(body), request.headers)
    except Unauthorized as exc:
        CALLBACKS_REFUSED.labels(exc.code).inc()
        raise
    CALLBACKS.labels(outcome.verdict).inc()
    if outcome.verdict == "wrong_host":
        raise Conflict(f"job {outcome.job_id!r} belongs to another host", code="wrong_host")
    await services.announce(outcome.event)
    return {"verdict": outcome.verdict, "job_id": outcome.job_id, "seq": outcome.seq}
