"""A job's image holds every valid reference: a 255-character repository, ':' and a 128-character tag (384).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite rebuilds the table; Postgres alters the column
        batch.alter_column("image", existing_type=sa.String(300), type_=sa.String(384), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("image", existing_type=sa.String(384), type_=sa.String(300), existing_nullable=False)
