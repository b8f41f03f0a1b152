"""Import jobs over HTTP: create (one per host), list, snapshot, event log, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ferry_contract.api_errors import COMMON, error_responses

from ... import import_jobs as ops
from ... import replays
from ... import store as st
from ...errors import NotFound
from ...models import Job
from ...views import deliveries_view, event_view, job_view
from ..deps import Operator, ServicesDep, Viewer
from ..schemas import ImportCreate, ReplayCreate

router = APIRouter(prefix="/api/imports", responses=error_responses(*COMMON, 502))
STATES = "^(queued|running|succeeded|failed|canceled)$"


@router.post("", status_code=202)
async def create(body: ImportCreate, principal: Operator, services: ServicesDep) -> dict:
    """One job per host; each Job keeps `created_by` (the token's name) and `source_name` (the file or URL)."""
    jobs = await ops.create_jobs(
        services,
        upload_id=body.upload_id,
        source_url=body.source_url,
        hosts=body.hosts,
        image=body.image,
        format=body.format.value,
        changes=body.changes,
        force=body.force,
        created_by=principal.name,
    )
    return {"jobs": [job_view(j) for j in jobs]}


@router.get("")
async def list_jobs(
    _: Viewer,
    services: ServicesDep,
    state: str | None = Query(None, pattern=STATES),
    host: str | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> dict:
    async with services.store.read() as session:
        jobs = await st.list_jobs(session, state=state, host=host, limit=limit)
    return {"jobs": [job_view(j) for j in jobs]}


@router.get("/{job_id}")
async def get_job(job_id: str, _: Viewer, services: ServicesDep) -> dict:
    async with services.store.read() as session:
        job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}", code="job_not_found")
    return job_view(job)


@router.get("/{job_id}/events")
async def get_events(job_id: str, _: Viewer, services: ServicesDep, after_seq: int = Query(0, ge=0)) -> list[dict]:
    async with services.store.read() as session:
        if await session.get(Job, job_id) is None:
            raise NotFound(f"no job {job_id!r}", code="job_not_found")
        events = await st.events_after(session, job_id, after_seq)
    return [event_view(e) for e in events]


@router.get("/{job_id}/deliveries")
async def get_deliveries(job_id: str, _: Operator, services: ServicesDep) -> list[dict]:
    """The raw callbacks of a job as they arrived (headers and body as received), each with its verdict and
    `answer` ({status, body}: what the backend answered the importer; null for deliveries stored before it was kept)."""
    async with services.store.read() as session:
        firsts, repeats = await st.job_deliveries(session, job_id)
        if not firsts and await session.get(Job, job_id) is None:  # refused deliveries may name a job never created
            raise NotFound(f"no job {job_id!r}", code="job_not_found")
    return deliveries_view(firsts, repeats)


@router.delete("/{job_id}", status_code=202)
async def cancel(job_id: str, _: Operator, services: ServicesDep) -> dict:
    return job_view(await ops.cancel(services, job_id))


@router.post("/{job_id}/replay", status_code=202)
async def replay(job_id: str, _: Operator, services: ServicesDep, body: ReplayCreate | None = None) -> dict:
    """Send the job's logged events again to its watchers (marked replay), original gaps / speed; nothing is stored."""
    return await replays.start_replay(services, job_id, (body or ReplayCreate()).factor)


@router.delete("/{job_id}/replay")
async def cancel_replay(job_id: str, _: Operator, services: ServicesDep) -> dict:
    """Stop the job's running replay (started on this replica); events already sent stay sent."""
    return replays.cancel_replay(services, job_id)
