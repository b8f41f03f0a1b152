"""Initial schema: tokens, hosts, uploads, jobs, the event log, raw deliveries, shared settings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "hosts",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("token", sa.String(500), nullable=False),
        sa.Column("webhook_secret", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("disk_free_bytes", sa.BigInteger, nullable=True),
        sa.Column("spool_free_bytes", sa.BigInteger, nullable=True),
        sa.Column("engine_version", sa.String(100), nullable=True),
        sa.Column("running", sa.JSON, nullable=False),
        sa.Column("queued", sa.JSON, nullable=False),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("filename", sa.String(1000), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("image", sa.String(300), nullable=False),
        sa.Column("upload_id", sa.String(64), nullable=True),
        sa.Column("source_url", sa.String(2000), nullable=True),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("force", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("percent", sa.Float, nullable=False),
        sa.Column("bytes_done", sa.BigInteger, nullable=False),
        sa.Column("bytes_total", sa.BigInteger, nullable=True),
        sa.Column("rate_bps", sa.Float, nullable=True),
        sa.Column("eta_s", sa.Float, nullable=True),
        sa.Column("phase_elapsed_s", sa.Float, nullable=True),
        sa.Column("queue_position", sa.Integer, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("last_contact_at", TS, nullable=False),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_host", "jobs", ["host"])
    op.create_index("ix_jobs_created", "jobs", ["created_at"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("timestamp", TS, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("webhook_id", sa.String(200), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("job_id", "seq", name="uq_events_job_seq"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("webhook_id", sa.String(200), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=True),
        sa.Column("seq", sa.Integer, nullable=True),
        sa.Column("event_type", sa.String(40), nullable=True),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("verdict", sa.String(40), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False),
        sa.Column("last_received_at", TS, nullable=True),
        sa.UniqueConstraint("host", "webhook_id", name="uq_deliveries_host_webhook"),
    )
    op.create_index("ix_deliveries_job", "deliveries", ["job_id"])
    op.create_table(
        "kv",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("kv", "deliveries", "events", "jobs", "uploads", "hosts", "tokens"):
        op.drop_table(table)
