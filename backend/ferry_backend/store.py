"""Durable state access: the Store (sessions and write transactions, transactions.py) and what is asked of it.

Every SQLAlchemy error is translated into StoreUnavailable at this boundary.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .errors import Conflict, NotFound
from .job_rules import SNAPSHOT_FIELDS, Snapshot
from .models import Delivery, DeliveryRepeat, Event, Host, Job, Setting, Token, Upload, utcnow
from .security import Role, hash_token, new_id, new_token
from .transactions import Store as Store  # callers reach the store through this module

BOOTSTRAP_TOKEN_NAME = "bootstrap-admin"


# --- tokens -------------------------------------------------------------------------------------


async def create_token(
    session: AsyncSession, role: Role, name: str, expires_at: datetime | None = None
) -> tuple[Token, str]:
    secret = new_token()
    row = Token(id=new_id("tok_"), name=name, role=role.name, token_hash=hash_token(secret), expires_at=expires_at)
    session.add(row)
    await session.flush()
    return row, secret


async def find_token(session: AsyncSession, secret: str) -> Token | None:
    """The token with this secret, if it is neither revoked nor expired."""
    row = await session.scalar(select(Token).where(Token.token_hash == hash_token(secret)))
    return row if row is not None and token_usable(row.revoked_at, row.expires_at, utcnow()) else None


def token_usable(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> bool:
    return revoked_at is None and (expires_at is None or expires_at > now)


async def list_tokens(session: AsyncSession) -> list[Token]:
    return list(await session.scalars(select(Token).order_by(Token.created_at, Token.id)))


async def revoke_token(session: AsyncSession, token_id: str) -> Token:
    row = await session.get(Token, token_id)
    if row is None:
        raise NotFound(f"no token {token_id!r}", code="token_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


async def unusable_tokens(session: AsyncSession, token_ids: list[str]) -> set[str]:
    """Which of these token ids are revoked, expired or gone (their sockets must go)."""
    rows = {row.id: row for row in await session.scalars(select(Token).where(Token.id.in_(token_ids)))}
    now = utcnow()
    return {
        tid for tid in token_ids if tid not in rows or not token_usable(rows[tid].revoked_at, rows[tid].expires_at, now)
    }


async def set_bootstrap_admin(session: AsyncSession, secret: str) -> None:
    """Make FERRY_ADMIN_TOKEN valid (and the previous bootstrap token, if different, invalid)."""
    digest = hash_token(secret)
    await session.execute(delete(Token).where(Token.name == BOOTSTRAP_TOKEN_NAME, Token.token_hash != digest))
    if await session.scalar(select(Token).where(Token.token_hash == digest)) is None:
        session.add(Token(id=new_id("tok_"), name=BOOTSTRAP_TOKEN_NAME, role=Role.admin.name, token_hash=digest))


async def shared_secret(session: AsyncSession, key: str) -> str:
    """A random secret created once and shared by every replica through the database."""
    row = await session.get(Setting, key)
    if row is None:
        row = Setting(key=key, value=secrets.token_hex(32))
        session.add(row)
        await session.flush()
    return row.value


# --- hosts --------------------------------------------------------------------------------------


async def add_host(
    session: AsyncSession, name: str, url: str, token: str, webhook_secret: str, replace: bool = False
) -> Host:
    existing = await session.get(Host, name)
    if existing is not None:
        if not replace:
            raise Conflict(f"host {name!r} is already registered", code="host_exists")
        existing.url, existing.token, existing.webhook_secret = url, token, webhook_secret
        return existing
    row = Host(name=name, url=url, token=token, webhook_secret=webhook_secret, running=[], queued=[])
    session.add(row)
    await session.flush()
    return row


async def list_hosts(session: AsyncSession) -> list[Host]:
    return list(await session.scalars(select(Host).order_by(Host.name)))


# --- uploads ------------------------------------------------------------------------------------


async def expired_uploads(session: AsyncSession, now: datetime, retention_s: int) -> list[Upload]:
    """Unfinished uploads past their expiry, and finished ones past retention, that no active job needs (a job
    pulling an unfinished upload ends `upload_abandoned` once it lands nothing for the idle limit; then it goes)."""
    unneeded = ~select(Job.id).where(Job.upload_id == Upload.id, Job.state.in_(["queued", "running"])).exists()
    stale = list(
        await session.scalars(select(Upload).where(Upload.complete.is_(False), Upload.expires_at < now, unneeded))
    )
    old = list(
        await session.scalars(
            select(Upload).where(
                Upload.complete.is_(True), Upload.completed_at < now - timedelta(seconds=retention_s), unneeded
            )
        )
    )
    return stale + old


async def active_jobs_of_upload(session: AsyncSession, upload_id: str) -> list[str]:
    """Ids of the unfinished jobs that pull this upload."""
    query = select(Job.id).where(Job.upload_id == upload_id, Job.state.in_(["queued", "running"]))
    return list(await session.scalars(query))


async def known_uploads(session: AsyncSession, upload_ids: list[str]) -> set[str]:
    """Which of these ids are uploads (the others are part files nobody recorded)."""
    return set(await session.scalars(select(Upload.id).where(Upload.id.in_(upload_ids))))


async def upload_in_use(session: AsyncSession, upload_id: str) -> bool:
    """True while an unfinished job may still pull this upload."""
    query = select(Job.id).where(Job.upload_id == upload_id, Job.state.in_(["queued", "running"])).limit(1)
    return await session.scalar(query) is not None


# --- jobs and events ----------------------------------------------------------------------------


def snapshot_of(job: Job) -> Snapshot:
    return Snapshot(
        **{name: getattr(job, name) for name in SNAPSHOT_FIELDS},
        seq=job.seq,
        result=job.result,
        error=job.error,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        presumed_at=job.presumed_at,
    )


def snapshot_values(snap: Snapshot) -> dict:
    """The job columns a snapshot sets."""
    values = {name: getattr(snap, name) for name in SNAPSHOT_FIELDS}
    values.update(
        seq=snap.seq,
        result=snap.result,
        error=snap.error,
        updated_at=snap.updated_at or utcnow(),
        finished_at=snap.finished_at,
        presumed_at=snap.presumed_at,
    )
    return values


def write_snapshot(job: Job, snap: Snapshot) -> None:
    for name, value in snapshot_values(snap).items():
        setattr(job, name, value)


async def unfinished_jobs(session: AsyncSession, host: str | None = None) -> list[Job]:
    """Queued and running jobs, of one host or of all."""
    query = select(Job).where(Job.state.in_(["queued", "running"]))
    if host is not None:
        query = query.where(Job.host == host)
    return list(await session.scalars(query))


async def undispatched_jobs(session: AsyncSession) -> list[str]:
    """Jobs created but never heard of: queued, nothing received, with something to import."""
    query = select(Job.id).where(
        Job.state == "queued", Job.seq == 0, (Job.upload_id.is_not(None)) | (Job.source_url.is_not(None))
    )
    return list(await session.scalars(query))


async def event_sent_at(session: AsyncSession, job_id: str, seq: int) -> datetime | None:
    """When the importer composed a job's event (its own clock)."""
    return await session.scalar(select(Event.timestamp).where(Event.job_id == job_id, Event.seq == seq))


async def lock_job(session: AsyncSession, job_id: str) -> Job | None:
    """The job row, locked for this transaction on Postgres (SQLite writers are already serialised)."""
    return await session.scalar(select(Job).where(Job.id == job_id).with_for_update())


async def job_totals(session: AsyncSession) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """Jobs by (state, host), and the archive bytes of succeeded jobs by host: the /metrics job totals."""
    counts = await session.execute(select(Job.state, Job.host, func.count()).group_by(Job.state, Job.host))
    sums = await session.execute(
        select(Job.host, func.sum(Job.bytes_total)).where(Job.state == "succeeded").group_by(Job.host)
    )
    return {(state, host): n for state, host, n in counts}, {host: int(total or 0) for host, total in sums}


async def list_jobs(
    session: AsyncSession, state: str | None = None, host: str | None = None, limit: int = 500
) -> list[Job]:
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if state:
        query = query.where(Job.state == state)
    if host:
        query = query.where(Job.host == host)
    return list(await session.scalars(query))


def new_event(
    job_id: str, seq: int, event_type: str, timestamp: datetime, data: dict, webhook_id: str | None, now: datetime
) -> Event:
    return Event(
        job_id=job_id, seq=seq, type=event_type, timestamp=timestamp, data=data, webhook_id=webhook_id, received_at=now
    )


async def append_event(
    session: AsyncSession,
    job_id: str,
    seq: int,
    event_type: str,
    timestamp: datetime,
    data: dict,
    webhook_id: str | None,
) -> Event | None:
    """Add (job, seq) to the log; None when that seq is already logged (the log keeps the first)."""
    if await session.scalar(select(Event.id).where(Event.job_id == job_id, Event.seq == seq)) is not None:
        return None
    row = Event(
        job_id=job_id,
        seq=seq,
        type=event_type,
        timestamp=timestamp,
        data=data,
        webhook_id=webhook_id,
        received_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def events_after(session: AsyncSession, job_id: str, after_seq: int) -> list[Event]:
    return list(
        await session.scalars(select(Event).where(Event.job_id == job_id, Event.seq > after_seq).order_by(Event.seq))
    )


async def job_deliveries(session: AsyncSession, job_id: str) -> tuple[list[Delivery], list[DeliveryRepeat]]:
    """Every stored delivery attributed to a job, and every repeated arrival of them."""
    firsts = list(await session.scalars(select(Delivery).where(Delivery.job_id == job_id).order_by(Delivery.id)))
    repeats = list(
        await session.scalars(select(DeliveryRepeat).where(DeliveryRepeat.job_id == job_id).order_by(DeliveryRepeat.id))
    )
    return firsts, repeats
