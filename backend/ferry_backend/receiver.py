"""The webhook receiver: verify over the raw body, dedupe by webhook-id, log, apply, then announce.

Nothing about an unverified delivery is stored. A verified one is kept raw with its verdict, so an
operator can see exactly what an importer sent and what the backend made of it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ferry_contract import EventType, parse_callback
from ferry_contract.events import NAME_MAX_LEN

from . import answers
from . import store as st
from .dedupe import DeliveryRow, keep_refused
from .errors import InvalidRequest, Unauthorized
from .ingest import IngestWriter
from .ingest_batch import Arrival, Outcome
from .job_rules import lost_by_host
from .logs import bind
from .models import Host, utcnow
from .views import job_view

log = logging.getLogger("ferry.callbacks")
TOLERANCE_S = 300
WEBHOOK_ID_MAX = NAME_MAX_LEN
KEPT_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "user-agent")


@functools.lru_cache(maxsize=256)
def _webhook(secret: str) -> Webhook:
    return Webhook(secret)


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
        _webhook(secret).verify(body, lowered, json_parse=False)
    except (WebhookVerificationError, ValueError, UnicodeDecodeError):
        raise Unauthorized("webhook signature does not match", code="bad_signature") from None
    return msg_id


class HostSecrets:
    """Webhook secrets by host, read from the store at most every `ttl_s` (hosts change rarely, callbacks often).

    One read per host at a time (concurrent callbacks wait for it instead of each reading), and at
    most MAX_ENTRIES names remembered, so callbacks naming random hosts cannot grow memory.
    """

    MAX_ENTRIES = 4096

    def __init__(self, store: st.Store, ttl_s: float = 2.0):
        self.store = store
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._reading: dict[str, asyncio.Future] = {}

    async def get(self, host_name: str) -> str | None:
        cached = self._cache.get(host_name)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        if host_name in self._reading:
            return await asyncio.shield(self._reading[host_name])
        future = self._reading[host_name] = asyncio.get_running_loop().create_future()
        try:
            async with self.store.read() as session:
                host = await session.get(Host, host_name)
            secret = host.webhook_secret if host else None
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[host_name] = (time.monotonic(), secret)
            future.set_result(secret)
            return secret
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: the waiters get it, nobody else needs to
            raise
        finally:
            del self._reading[host_name]

    def forget(self, host_name: str) -> None:
        self._cache.pop(host_name, None)


class Receiver:
    """Verifies and parses one raw delivery; the common path then waits for the group commit (ingest.py)."""

    def __init__(self, store: st.Store):
        self.store = store
        self.secrets = HostSecrets(store)
        self.writer = IngestWriter(store)

    async def receive(self, host_name: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        now = utcnow()
        bind(host=host_name)
        secret = await self.secrets.get(host_name)
        if secret is None:
            raise Unauthorized(f"unknown host {host_name!r}", code="unknown_host")
        webhook_id = verify_signature(secret, body, headers, now)
        if len(webhook_id) > WEBHOOK_ID_MAX:  # the deliveries table keys on it: refused before anything is stored
            raise InvalidRequest(f"webhook-id is longer than {WEBHOOK_ID_MAX} characters", code="invalid_webhook_id")
        kept = {k: v for k, v in ((k.lower(), v) for k, v in headers.items()) if k in KEPT_HEADERS}
        text = body.decode("utf-8")
        try:
            callback = parse_callback(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            problem = InvalidRequest(
                f"callback does not match the contract: {where}: {first.get('msg')}", code="invalid_callback"
            )
            return await self._refuse(host_name, webhook_id, kept, text, now, "invalid", problem)
        if callback.data.host != host_name:  # the signature says who sent it; the body may not claim another host
            problem = InvalidRequest(
                f"data.host {callback.data.host!r} is not the signing host {host_name!r}", code="host_mismatch"
            )
            return await self._refuse(host_name, webhook_id, kept, text, now, "host_mismatch", problem)
        bind(job_id=getattr(callback.data, "job_id", None))
        if callback.type == EventType.HEARTBEAT:
            return await _heartbeat(self.store, host_name, callback, now)
        data = json.loads(text)["data"]  # the importer's own data, exactly as signed
        return await self.writer.store_and_wait(
            Arrival(host_name, webhook_id, kept, text, callback.type, callback.timestamp, data, now)
        )

    async def _refuse(self, host_name, webhook_id, kept, text, now, verdict: str, problem: InvalidRequest) -> Outcome:
        """Keep a verified delivery that cannot be applied, then refuse it; its retries answer `duplicate`."""
        job_id, seq, event_type = _attribution(text)
        row = DeliveryRow(host_name, webhook_id, job_id, seq, event_type, kept, text, verdict, now)
        row.answered(answers.refused(problem.status, problem.code, problem.message))
        try:
            first = await self.store.write_sync(keep_refused, row)
        except IntegrityError:  # another replica kept it meanwhile
            first = None
        if first is not None:  # a retry of a delivery already received: stop the retries
            return Outcome("duplicate", first.job_id, first.seq)
        raise problem


def _attribution(text: str) -> tuple[str | None, int | None, str | None]:
    """Job id, seq and type of a verified delivery that breaks the contract, where they can be read at all."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than a parser follows
        return None, None, None
    data = body.get("data") if isinstance(body, dict) else None
    data = data if isinstance(data, dict) else {}
    job_id, seq, event_type = data.get("job_id"), data.get("seq"), body.get("type") if isinstance(body, dict) else None
    return (
        job_id if isinstance(job_id, str) and 0 < len(job_id) <= 200 else None,
        seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**31 else None,
        event_type if isinstance(event_type, str) and len(event_type) <= 40 else None,
    )


async def _heartbeat(store: st.Store, host_name: str, callback, now: datetime) -> Outcome:
    """Liveness and capacity of a host. A heartbeat not newer than the last one applied (a replay, or a retry
    that arrives late) changes nothing, not even last_seen: replaying an old one cannot fake a live host.

    A heartbeat is a word from the host: it ends the doubt on its jobs. A newer one that no longer
    lists a job the host reported on before proves the host lost it (see jobs.lost_by_host).
    """
    sent = callback.timestamp if callback.timestamp.tzinfo else callback.timestamp.replace(tzinfo=UTC)
    outcome = Outcome("heartbeat")
    async with store.write() as session:
        host = await session.get(Host, host_name)
        if host is None:  # removed since its secret was read
            raise Unauthorized(f"unknown host {host_name!r}", code="unknown_host")
        if host.heartbeat_at is not None and sent <= host.heartbeat_at:
            return Outcome("duplicate")
        beat = callback.data
        host.last_seen = now
        host.heartbeat_at = sent
        host.disk_free_bytes = beat.disk_free_bytes
        host.spool_free_bytes = beat.spool_free_bytes
        host.engine_version = beat.engine_version
        host.running = list(beat.running)
        host.queued = list(beat.queued)
        listed = set(beat.running) | set(beat.queued)
        for job in await st.unfinished_jobs(session, host_name):
            if job.silent_since is not None:
                job.silent_since = None
                outcome.notices.append(job_view(job))
            if job.id not in listed and job.seq > 0:
                last_sent = await st.event_sent_at(session, job.id, job.seq)
                if lost_by_host(job.id, job.seq, listed, last_sent, sent):
                    outcome.lost.append(job.id)
    return outcome
