"""Every repeated arrival of a webhook-id (a retry or a replay), kept raw for operators.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_repeats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("webhook_id", sa.String(200), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=True),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_delivery_repeats_job", "delivery_repeats", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_repeats_job", "delivery_repeats")
    op.drop_table("delivery_repeats")
