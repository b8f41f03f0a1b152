"""The webhook receiver: verify over the raw body, dedupe by webhook-id, log, apply, then announce.

Nothing about an unverified delivery is stored. A verified one is kept raw with its verdict, so an
operator can see exactly what an importer sent and what the backend made of it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from pydantic import ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from sqlalchemy.exc import IntegrityError

from ferry_contract import EventType, parse_callback

from . import store as st
from .errors import InvalidRequest, Unauthorized
from .jobs import Verdict, apply_event
from .models import Delivery, Host, Job, utcnow
from .realtime import LiveEvent

log = logging.getLogger("ferry.callbacks")
TOLERANCE_S = 300
KEPT_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "user-agent")


def verify_signature(secret: str, body: bytes, headers: Mapping[str, str], now: datetime) -> str:
    """Check a Standard Webhooks delivery; return its webhook-id or raise Unauthorized with the reason."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signature = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and signature):
        raise Unauthorized("missing webhook-id, webhook-timestamp or webhook-signature", code="missing_signature")
    try:
        sent = float(stamp)
    except ValueError:
        raise Unauthorized("webhook-timestamp is not a Unix time", code="bad_signature") from None
    if abs(now.timestamp() - sent) > TOLERANCE_S:
        raise Unauthorized("webhook-timestamp is more than 5 minutes off", code="stale_timestamp")
    try:
        Webhook(secret).verify(body, lowered, json_parse=False)
    except (WebhookVerificationError, ValueError, UnicodeDecodeError):
        raise Unauthorized("webhook signature does not match", code="bad_signature") from None
    return msg_id


@dataclass
class Outcome:
    verdict: str
    job_id: str | None = None
    seq: int | None = None
    event: LiveEvent | None = None  # set when the event entered the log: announce it


def _job_from_event(host: str, data: dict, now: datetime) -> Job:
    """A job the backend never dispatched (a replayed capture): record it from what the importer says."""
    image = (data.get("image") or {}).get("ref") or "unknown"
    return Job(
        id=data["job_id"], host=host, image=image, upload_id=None, source_url=None, format="auto", changes=[],
        force=False, state="queued", phase="queued", seq=0, percent=0.0, bytes_done=0,
        created_at=now, updated_at=now, last_contact_at=now,
    )


async def receive(store: st.Store, host_name: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
    now = utcnow()
    async with store.read() as session:
        host = await session.get(Host, host_name)
        secret = host.webhook_secret if host else None
    if secret is None:
        raise Unauthorized(f"unknown host {host_name!r}", code="unknown_host")
    webhook_id = verify_signature(secret, body, headers, now)
    kept = {k: v for k, v in ((k.lower(), v) for k, v in headers.items()) if k in KEPT_HEADERS}
    text = body.decode("utf-8")
    try:
        callback = parse_callback(body)
    except ValidationError as exc:
        duplicate = await _seen_before(store, host_name, webhook_id, now)
        if duplicate is not None:  # a retry of a delivery already refused: stop the retries
            return duplicate
        await _record(store, host_name, webhook_id, kept, text, None, None, None, "invalid", now)
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidRequest(f"callback does not match the contract: {where}: {first.get('msg')}", code="invalid_callback") from None
    if callback.type == EventType.HEARTBEAT:
        await _heartbeat(store, host_name, callback, now)
        return Outcome("heartbeat")
    data = json.loads(text)["data"]  # the importer's own data, exactly as signed
    try:
        return await _apply(store, host_name, webhook_id, kept, text, callback, data, now)
    except IntegrityError:  # a concurrent copy of the same delivery won the race
        return Outcome("duplicate", data["job_id"], data["seq"])


async def _seen_before(store: st.Store, host_name: str, webhook_id: str, now: datetime) -> Outcome | None:
    """A webhook-id already received (a retry or a replay): count it, change nothing else."""
    async with store.write() as session:
        existing = await st.find_delivery(session, host_name, webhook_id)
        if existing is None:
            return None
        existing.duplicates += 1
        existing.last_received_at = now
        return Outcome("duplicate", existing.job_id, existing.seq)


async def _apply(store, host_name, webhook_id, kept, text, callback, data, now) -> Outcome:
    async with store.write() as session:
        existing = await st.find_delivery(session, host_name, webhook_id)
        if existing is not None:
            existing.duplicates += 1
            existing.last_received_at = now
            return Outcome("duplicate", existing.job_id, existing.seq)
        delivery = Delivery(
            host=host_name, webhook_id=webhook_id, job_id=data["job_id"], seq=data["seq"], event_type=callback.type,
            headers=kept, body=text, verdict="pending", received_at=now, duplicates=0,
        )
        session.add(delivery)
        await session.flush()
        host = await session.get(Host, host_name)
        host.last_seen = now
        job = await st.lock_job(session, data["job_id"])
        if job is None:
            job = _job_from_event(host_name, data, now)
            session.add(job)
        elif job.host != host_name:
            delivery.verdict = "wrong_host"
            return Outcome("wrong_host", job.id, data["seq"])
        job.last_contact_at = now
        verdict, snap = apply_event(st.snapshot_of(job), callback.type, data, now)
        if verdict is Verdict.APPLIED:
            st.write_snapshot(job, snap)
            if job.image == "unknown" and data.get("image"):
                job.image = data["image"].get("ref") or job.image
        logged = await st.append_event(session, job.id, data["seq"], callback.type, callback.timestamp, data, webhook_id)
        delivery.verdict = verdict.value
        event = LiveEvent(job.id, data["seq"], callback.type, data) if logged is not None else None
        if verdict is not Verdict.APPLIED:
            log.info("job %s: %s seq %s is %s (snapshot at seq %s)", job.id, callback.type, data["seq"], verdict.value, job.seq)
        return Outcome(verdict.value, job.id, data["seq"], event)


async def _record(store, host_name, webhook_id, kept, text, job_id, seq, event_type, verdict, now) -> None:
    """Keep a verified but unusable delivery for operators (once per webhook-id)."""
    try:
        async with store.write() as session:
            if await st.find_delivery(session, host_name, webhook_id) is None:
                session.add(Delivery(
                    host=host_name, webhook_id=webhook_id, job_id=job_id, seq=seq, event_type=event_type,
                    headers=kept, body=text, verdict=verdict, received_at=now, duplicates=0,
                ))
    except IntegrityError:
        pass


async def _heartbeat(store: st.Store, host_name: str, callback, now: datetime) -> None:
    """Liveness and capacity of a host; an older heartbeat (retried late) never overwrites a newer one."""
    sent = callback.timestamp if callback.timestamp.tzinfo else callback.timestamp.replace(tzinfo=timezone.utc)
    async with store.write() as session:
        host = await session.get(Host, host_name)
        host.last_seen = now
        if host.heartbeat_at is not None and sent <= host.heartbeat_at:
            return
        beat = callback.data
        host.heartbeat_at = sent
        host.disk_free_bytes = beat.disk_free_bytes
        host.spool_free_bytes = beat.spool_free_bytes
        host.engine_version = beat.engine_version
        host.running = list(beat.running)
        host.queued = list(beat.queued)
