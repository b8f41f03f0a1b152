"""Periodic housekeeping: jobs on silent hosts fail `host_unreachable`; abandoned uploads are removed."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import select

from ferry_contract import ErrorCode

from .errors import FerryError
from .imports import fail_job
from .jobs import host_is_stale
from .models import Job, Upload, utcnow
from .services import Services
from . import store as st

log = logging.getLogger("ferry.liveness")


async def stale_jobs(services: Services) -> list[tuple[str, str, float]]:
    """(job id, host, seconds silent) of every unfinished job whose host went quiet."""
    now = utcnow()
    timeout = services.settings.host_stale_s
    async with services.store.read() as session:
        hosts = {h.name: h for h in await st.list_hosts(session)}
        jobs = list(await session.scalars(select(Job).where(Job.state.in_(["queued", "running"]))))
    found = []
    for job in jobs:
        host = hosts.get(job.host)
        last_seen = host.last_seen if host else None
        if host_is_stale(last_seen, job.last_contact_at, now, timeout):
            reference = max(last_seen, job.last_contact_at) if last_seen else job.last_contact_at
            found.append((job.id, job.host, (now - reference).total_seconds()))
    return found


async def sweep(services: Services) -> None:
    for job_id, host, silent in await stale_jobs(services):
        message = f"host {host!r} sent nothing for {silent:.0f} s (limit {services.settings.host_stale_s:g} s)"
        if await fail_job(services, job_id, ErrorCode.HOST_UNREACHABLE, message):
            log.warning("job %s failed: %s", job_id, message, extra={"job_id": job_id, "host": host})
    async with services.store.write() as session:
        expired = await st.expired_uploads(session, utcnow(), services.settings.upload_retention_s)
        for upload in expired:
            await session.delete(upload)
    for upload in expired:
        services.parts.remove(upload.id)
        log.info("upload %s expired and was removed", upload.id)
    await remove_orphan_parts(services)


ORPHAN_GRACE_S = 60.0


async def remove_orphan_parts(services: Services) -> None:
    """Part files with no upload row (a crash between creating the file and recording the upload)."""
    stale = services.parts.untouched_since(time.time() - max(ORPHAN_GRACE_S, services.settings.upload_expiry_s))
    if not stale:
        return
    async with services.store.read() as session:
        known = set(await session.scalars(select(Upload.id).where(Upload.id.in_(stale))))
    for upload_id in stale:
        if upload_id not in known:
            services.parts.remove(upload_id)
            log.warning("removed part file %s: no upload of that id exists", upload_id)


async def run_sweeper(services: Services) -> None:
    while True:
        await asyncio.sleep(services.settings.liveness_interval_s)
        try:
            await sweep(services)
        except FerryError as exc:
            log.warning("housekeeping skipped: %s", exc.message)
        except Exception:
            log.exception("housekeeping failed")
