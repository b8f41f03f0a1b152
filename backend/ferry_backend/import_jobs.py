"""Import jobs: create one per host, dispatch them in parallel, cancel, and the events the backend itself announces."""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import quote, unquote, urlsplit

from ferry_contract import ErrorCode, EventType, ImportEventData, ImportJobRequest, UrlSource
from ferry_contract.urls import allowed_by, parse_url

from . import store as st
from .content import is_abandoned
from .errors import Conflict, HostError, InvalidRequest, NotFound
from .job_rules import UNNAMED, Verdict, apply_event, backend_canceled, backend_failure, presumed_failure
from .logs import bind
from .metrics import BACKEND_FAILURES, DISPATCHES, observe_finished
from .models import Host, Job, Upload, utcnow
from .realtime import LiveEvent
from .security import new_id, sign_content_link
from .services import Services
from .tus import declared_sha256
from .views import iso, job_view

log = logging.getLogger("ferry.imports")


def public_url(services: Services) -> str:
    return (services.settings.public_url or "http://127.0.0.1:8000").rstrip("/")


async def create_jobs(
    services: Services,
    *,
    upload_id: str | None,
    source_url: str | None,
    hosts: list[str],
    image: str | None,
    format: str,
    changes: list[str],
    force: bool,
    created_by: str | None = None,
) -> list[Job]:
    """Validate everything first (nothing is created on a bad request), then one queued job per host.

    Without an image name the job is named after what the archive loads once it completed (UNNAMED until then):
    like `docker load`, a docker-save archive keeps its own tags. A filesystem import needs a name."""
    if image is None and format == "import":
        raise InvalidRequest(
            "give an image name: a filesystem archive has no name of its own", code="invalid_reference"
        )
    if bool(upload_id) == bool(source_url):
        raise InvalidRequest("give exactly one of upload_id or source_url")
    if not hosts or len(set(hosts)) != len(hosts):
        raise InvalidRequest("hosts: give one or more distinct host names")
    if source_url is not None:
        try:  # the importer checks again against its own list: this one keeps the backend's promise
            parse_url(source_url)
            if services.settings.source_url_prefixes:
                allowed_by(source_url, services.settings.url_prefixes)
        except ValueError as exc:
            raise InvalidRequest(f"source_url refused: {exc}", code="source_not_allowed") from None
    now = utcnow()
    source_name = source_url_name(source_url)
    async with services.store.write() as session:
        if upload_id is not None:
            upload = await session.get(Upload, upload_id)
            if upload is None:
                raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
            if is_abandoned(upload.complete, upload.updated_at, now, services.settings.upload_idle_s):
                raise Conflict(
                    f"upload {upload_id!r} stopped at {upload.offset} of {upload.size} bytes and was abandoned",
                    code="upload_abandoned",
                )
            source_name = upload.filename
        for name in hosts:
            if await session.get(Host, name) is None:
                raise NotFound(f"no host {name!r}: register it with POST /api/hosts", code="unknown_host")
        jobs = []
        for name in hosts:
            job = Job(
                id=new_id("job_"),
                host=name,
                image=image or UNNAMED,
                upload_id=upload_id,
                source_url=source_url,
                format=format,
                changes=list(changes),
                force=force,
                created_by=(created_by or None) and created_by[:200],
                source_name=source_name[:1000] if source_name else None,
                state="queued",
                phase="queued",
                seq=0,
                percent=0.0,
                bytes_done=0,
                created_at=now,
                updated_at=now,
                last_contact_at=now,
            )
            session.add(job)
            jobs.append(job)
    for job in jobs:
        services.spawn(dispatch(services, job.id), name=f"dispatch-{job.id}")
    return jobs


def source_url_name(url: str | None) -> str | None:
    """The file a source URL names: its last path segment (the URL itself when it has none)."""
    if not url:
        return None
    path = urlsplit(url).path
    return unquote(path.rsplit("/", 1)[-1]) or url


async def dispatch(services: Services, job_id: str) -> None:
    """Hand one job to its importer; a refusal or an unreachable host fails the job with a clear code."""
    try:
        await _dispatch(services, job_id)
    except Exception as exc:  # anything else must not leave the job queued until the stale sweep
        log.exception("dispatch of %s failed", job_id)
        DISPATCHES.labels(ErrorCode.DISPATCH_FAILED.value).inc()
        await fail_job(services, job_id, ErrorCode.DISPATCH_FAILED, f"the backend could not dispatch the job: {exc}")


async def _dispatch(services: Services, job_id: str) -> None:
    async with services.store.read() as session:
        job = await session.get(Job, job_id)
        host = await session.get(Host, job.host) if job else None
        upload = await session.get(Upload, job.upload_id) if job and job.upload_id else None
    if job is None:  # removed meanwhile: nothing to send
        return
    if host is None:
        raise HostError(f"host {job.host!r} is no longer registered", code="dispatch_failed")
    bind(job_id=job.id, host=host.name)
    if upload is not None:
        link = sign_content_link(services.content_key, upload.id, services.settings.content_token_ttl_s)
        source = (
            UrlSource(  # an upload still arriving: the sha256 its client declared, if any (else checked at the end)
                url=f"{public_url(services)}/api/uploads/{upload.id}/content?token={quote(link)}",
                sha256=upload.sha256 or declared_sha256(upload.meta or {}),
                size=upload.size,
            )
        )
    else:
        source = UrlSource(url=job.source_url)
    request = ImportJobRequest(
        job_id=job.id,
        image=None if job.image == UNNAMED else job.image,
        format=job.format,
        changes=job.changes,
        force=job.force,
        source=source,
        callback_url=f"{public_url(services)}/api/callbacks/{quote(host.name, safe='')}",
    )
    try:
        await services.importers.send_job(host, request)
        DISPATCHES.labels("accepted").inc()
    except HostError as exc:
        DISPATCHES.labels(exc.code).inc()
        log.warning("dispatch of %s to %s failed: %s", job.id, host.name, exc.message)
        if exc.maybe_received:  # it may have the job after all (no answer came): a presumption, not a fact
            await presume_failed(services, job.id, ErrorCode.HOST_UNREACHABLE, exc.message)
        else:
            await fail_job(services, job.id, ErrorCode(exc.code), exc.message)


async def redispatch_unconfirmed(services: Services) -> None:
    """Jobs created but never heard of (the backend stopped mid-dispatch) are sent again on start.

    Importers treat a known job_id as the same job, so a second POST never imports twice.
    """
    async with services.store.read() as session:
        job_ids = await st.undispatched_jobs(session)
    for job_id in job_ids:
        services.spawn(dispatch(services, job_id), name=f"redispatch-{job_id}")


async def announce_backend_event(services: Services, job_id: str, event_type: EventType, build) -> bool:
    """Append an event the backend decided (seq = snapshot + 1) and announce it; False if the job already ended."""
    now = utcnow()
    async with services.store.write() as session:
        job = await st.lock_job(session, job_id)
        if job is None:
            return False
        snap = st.snapshot_of(job)
        if snap.terminal:
            return False
        data = ImportEventData.model_validate(build(snap, job)).model_dump(mode="json")
        verdict, new = apply_event(snap, event_type, data, now)
        if verdict is not Verdict.APPLIED:
            return False
        st.write_snapshot(job, new)
        logged = await st.append_event(session, job.id, data["seq"], event_type.value, now, data, None)
        finished = (new.state, job.host, (now - job.created_at).total_seconds()) if new.terminal else None
    observe_finished(finished)
    if logged is not None:
        await services.announce(
            LiveEvent(job_id, data["seq"], event_type.value, data, iso(now), received_ts=now.timestamp())
        )
    return True


async def fail_job(services: Services, job_id: str, code: ErrorCode, message: str, detail: str | None = None) -> bool:
    BACKEND_FAILURES.labels(code.value).inc()
    return await announce_backend_event(
        services,
        job_id,
        EventType.FAILED,
        lambda snap, job: backend_failure(snap, job.id, job.host, code, message, detail),
    )


async def presume_failed(
    services: Services,
    job_id: str,
    code: ErrorCode,
    message: str,
    detail: str | None = None,
    quiet_since: datetime | None = None,
) -> bool:
    """Fail a job on the backend's own judgement, outside the importer's seq space (no event is logged).

    The job reads failed, with `presumed: true`; the host's next verified event still continues it
    to its real end (jobs.apply_event), so the only terminal event ever sent is the host's own.
    Announced as a `job.snapshot` notice; False if the job already ended.
    """
    now = utcnow()
    async with services.store.write() as session:
        job = await st.lock_job(session, job_id)
        if job is None or job.state in ("succeeded", "failed", "canceled"):
            return False
        if quiet_since is not None and await _heard_since(session, job, quiet_since):
            return False  # the host spoke after the sweep looked: no presumption
        st.write_snapshot(job, presumed_failure(st.snapshot_of(job), code, message, now, detail))
        view = job_view(job)
    BACKEND_FAILURES.labels(code.value).inc()
    await announce_snapshot(services, view)
    return True


async def _heard_since(session, job: Job, since: datetime) -> bool:
    host = await session.get(Host, job.host)
    return job.last_contact_at > since or (host is not None and host.last_seen is not None and host.last_seen > since)


async def announce_snapshot(services: Services, view: dict) -> None:
    """The backend's own word on a job (a doubt begins or ends, a presumption) to every watcher, never counted."""
    await services.announce(LiveEvent(view["id"], view["seq"], "job.snapshot", view, iso(utcnow()), notice=True))


async def cancel(services: Services, job_id: str) -> Job:
    bind(job_id=job_id)
    async with services.store.read() as session:
        job = await session.get(Job, job_id)
        host = await session.get(Host, job.host) if job else None
    if job is None:
        raise NotFound(f"no job {job_id!r}", code="job_not_found")
    if job.state in ("succeeded", "failed", "canceled"):
        raise Conflict(f"job {job_id!r} already {job.state}", code="job_finished")
    known = await services.importers.cancel(host, job_id) if host else False
    if not known:  # the importer never got it: nothing runs, so the backend ends it
        await announce_backend_event(
            services,
            job_id,
            EventType.CANCELED,
            lambda snap, j: backend_canceled(snap, j.id, j.host, "canceled before the host accepted it"),
        )
    async with services.store.read() as session:
        canceled = await session.get(Job, job_id)
    if canceled is None:
        raise NotFound(f"no job {job_id!r}", code="job_not_found")
    return canceled
