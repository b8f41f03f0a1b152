"""Health, identity and the image catalog."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ferry_contract.api_errors import COMMON, error_responses

from ... import __version__
from ... import store as st
from ...imports import host_images
from ...metrics import JOB_TOTALS, SOCKETS, render
from ..deps import ServicesDep, Viewer

router = APIRouter(responses=error_responses(*COMMON, 502))


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok", "version": __version__}


@router.get("/api/me")
async def me(principal: Viewer) -> dict:
    return {"role": principal.role.name, "token_id": principal.token_id}


@router.get("/api/images")
async def images(_: Viewer, services: ServicesDep) -> list[dict]:
    return await host_images(services)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(_: Viewer, request: Request) -> dict:
    """The API description (the page reads it to find optional endpoints such as replay)."""
    return request.app.openapi()


@router.get("/metrics")
async def metrics(_: Viewer, services: ServicesDep) -> Response:
    SOCKETS.set(len(services.hub.subscribers))
    async with services.store.read() as session:
        JOB_TOTALS.update(*await st.job_totals(session))
    return Response(render(), media_type=CONTENT_TYPE_LATEST)
