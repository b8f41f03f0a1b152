"""Health, identity and the image catalog."""

from __future__ import annotations

from fastapi import APIRouter

from ... import __version__
from ...imports import host_images
from ..deps import ServicesDep, Viewer

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok", "version": __version__}


@router.get("/api/me")
async def me(principal: Viewer) -> dict:
    return {"role": principal.role.name, "token_id": principal.token_id}


@router.get("/api/images")
async def images(_: Viewer, services: ServicesDep) -> list[dict]:
    return await host_images(services)
