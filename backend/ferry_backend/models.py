"""Tables of the backend's durable state. Portable SQL: SQLite (embedded default) and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on the way in and out (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Host(Base):
    __tablename__ = "hosts"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    token: Mapped[str] = mapped_column(String(500))
    webhook_secret: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disk_free_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    spool_free_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    engine_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    running: Mapped[list] = mapped_column(JSON, default=list)
    queued: Mapped[list] = mapped_column(JSON, default=list)


class Upload(Base):
    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state", "state"),
        Index("ix_jobs_host", "host"),
        Index("ix_jobs_created", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    image: Mapped[str] = mapped_column(String(384))  # REF_MAX_LEN of the contract
    upload_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    format: Mapped[str] = mapped_column(String(20), default="auto")
    changes: Mapped[list] = mapped_column(JSON, default=list)
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20))
    phase: Mapped[str] = mapped_column(String(20))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    percent: Mapped[float] = mapped_column(Float, default=0.0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rate_bps: Mapped[float | None] = mapped_column(Float, nullable=True)
    eta_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    phase_elapsed_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    queue_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    layers_done: Mapped[int | None] = mapped_column(Integer, nullable=True)  # MAX_LAYERS of the contract
    layers_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    layer_bytes_done: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    layer_bytes_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bytes_available: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_contact_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A doubt, not a fact: the host's last word when it went silent (None while it speaks), and when
    # the backend presumed the job failed (None unless the failure is the backend's presumption).
    silent_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    presumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Who started it (the token's name; None for a job the backend only heard of) and what it imports
    # (the uploaded file's name, or the source URL's last segment), kept after the upload expires.
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_name: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class Event(Base):
    """The durable event log: one row per (job, seq), replayed to sockets that (re)subscribe."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_events_job_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(200))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict] = mapped_column(JSON)
    webhook_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Delivery(Base):
    """A raw, verified callback as it arrived, with what the backend made of it (for operators)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("host", "webhook_id", name="uq_deliveries_host_webhook"),
        Index("ix_deliveries_job", "job_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(200))
    webhook_id: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    headers: Mapped[dict] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # What the backend answered (answers.py): the HTTP status and the JSON body; None before 0006.
    answer_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class DeliveryRepeat(Base):
    """A later arrival of a webhook-id already stored (a retry or a replay): answered `duplicate`, changed nothing."""

    __tablename__ = "delivery_repeats"
    __table_args__ = (Index("ix_delivery_repeats_job", "job_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(200))
    webhook_id: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    headers: Mapped[dict] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answer_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class Setting(Base):
    """Small key-value facts shared by every replica (e.g. the key that signs content links)."""

    __tablename__ = "kv"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
