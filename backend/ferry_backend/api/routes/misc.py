"""Health, identity and the image catalog."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ferry_contract.api_errors import COMMON, error_responses

from ... import __version__
from ... import store as st
from ...catalog import host_images, remove_host_image
from ...metrics import JOB_TOTALS, SOCKETS, render
from ..deps import Operator, ServicesDep, Viewer

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


@router.delete("/api/images/{host}/{image_id}", responses=error_responses(404, 409, 422))
async def remove_image(host: str, image_id: str, _: Operator, services: ServicesDep) -> dict:
    """Remove an image (by id, `sha256:…`) from a lab host; its importer does it through the Engine API.

    200 `{"host", "id", "removed": [tags and ids the engine untagged or deleted]}`. 404 `unknown_host` /
    `image_not_found`; 409 `image_in_use` while a queued or running job on that host imports to one of its
    tags, `image_has_containers` while a container uses it, `remove_failed` when the engine refuses; 422
    `invalid_image_id`; 502 `host_unreachable` / `remove_failed`.
    """
    return await remove_host_image(services, host, image_id)


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
