"""Lab hosts: register an importer (admin), list them with liveness from heartbeats."""

from __future__ import annotations

from fastapi import APIRouter

from ferry_contract.api_errors import COMMON, error_responses

from ... import store as st
from ...models import utcnow
from ...views import host_view
from ..deps import Admin, ServicesDep, Viewer
from ..schemas import HostCreate

router = APIRouter(prefix="/api/hosts", responses=error_responses(*COMMON))


@router.get("")
async def list_hosts(_: Viewer, services: ServicesDep) -> list[dict]:
    async with services.store.read() as session:
        hosts = await st.list_hosts(session)
    now = utcnow()
    return [host_view(h, now, services.settings.host_stale_s) for h in hosts]


@router.post("", status_code=201)
async def add_host(body: HostCreate, _: Admin, services: ServicesDep) -> dict:
    async with services.store.write() as session:
        host = await st.add_host(session, body.name, body.url, body.token, body.webhook_secret)
    services.receiver.secrets.forget(body.name)
    return host_view(host, utcnow(), services.settings.host_stale_s)
