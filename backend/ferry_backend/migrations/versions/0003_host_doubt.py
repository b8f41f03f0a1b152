"""A silent host's jobs carry a doubt (silent_since) and, past the long limit, a presumed failure (presumed_at).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("silent_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("presumed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("presumed_at")
        batch.drop_column("silent_since")
