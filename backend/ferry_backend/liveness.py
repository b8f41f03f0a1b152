"""Periodic housekeeping: jobs on silent hosts carry a doubt, then (long silent) a presumed failure; abandoned uploads are removed."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from ferry_contract import ErrorCode

from . import store as st
from .errors import FerryError
from .import_jobs import announce_snapshot, presume_failed
from .job_rules import Silence, last_word, silence
from .models import utcnow
from .services import Services
from .views import job_view

log = logging.getLogger("ferry.liveness")


async def silent_jobs(services: Services) -> list[tuple[str, str, datetime, Silence]]:
    """(job id, host, its last word, how silent) of every unfinished job whose host went quiet."""
    now = utcnow()
    settings = services.settings
    async with services.store.read() as session:
        hosts = {h.name: h for h in await st.list_hosts(session)}
        jobs = await st.unfinished_jobs(session)
    found: list[tuple[str, str, datetime, Silence]] = []
    for job in jobs:
        host = hosts.get(job.host)
        last = last_word(host.last_seen if host else None, job.last_contact_at, services.started_at)
        quiet = silence(last, now, settings.host_stale_s, settings.host_lost_s)
        if quiet is not Silence.SPEAKING:
            found.append((job.id, job.host, last, quiet))
    return found


async def mark_silent(services: Services, job_id: str, since: datetime) -> None:
    """Record the doubt (once per silence) and tell the watchers; the job stays unfinished."""
    async with services.store.write() as session:
        job = await st.lock_job(session, job_id)
        if (
            job is None
            or job.state not in ("queued", "running")
            or job.silent_since == since
            or job.last_contact_at > since
        ):
            return  # ended, already doubted, or its host spoke since the sweep looked
        job.silent_since = since
        view = job_view(job)
    log.info("job %s: %s", job_id, view["doubt"]["message"], extra={"job_id": job_id, "host": view["host"]})
    await announce_snapshot(services, view)


async def sweep(services: Services) -> None:
    lost_s = services.settings.host_lost_s
    for job_id, host, last, quiet in await silent_jobs(services):
        if quiet is Silence.SILENT:
            await mark_silent(services, job_id, last)
            continue
        message = f"no word from host {host!r} for {(utcnow() - last).total_seconds():.0f} s (limit {lost_s:g} s)"
        if await presume_failed(
            services,
            job_id,
            ErrorCode.HOST_UNREACHABLE,
            message,
            "presumed: a later report from the host replaces this",
            quiet_since=last,
        ):
            log.warning("job %s presumed failed: %s", job_id, message, extra={"job_id": job_id, "host": host})
    async with services.store.write() as session:
        expired = await st.expired_uploads(session, utcnow(), services.settings.upload_retention_s)
        # A PATCH still writing on this replica refreshes the expiry when it ends: not expired yet.
        expired = [upload for upload in expired if not services.upload_lock(upload.id).locked()]
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
        known = await st.known_uploads(session, stale)
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
