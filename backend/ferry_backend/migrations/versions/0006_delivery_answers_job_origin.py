"""Deliveries keep the answer the backend gave; jobs keep who started them and the source file's name.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("deliveries", "delivery_repeats"):
        op.add_column(table, sa.Column("answer_status", sa.Integer(), nullable=True))
        op.add_column(table, sa.Column("answer", sa.String(2000), nullable=True))
    op.add_column("jobs", sa.Column("created_by", sa.String(200), nullable=True))
    op.add_column("jobs", sa.Column("source_name", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("source_name")
        batch.drop_column("created_by")
    for table in ("delivery_repeats", "deliveries"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("answer")
            batch.drop_column("answer_status")
