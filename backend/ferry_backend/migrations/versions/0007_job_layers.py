"""Jobs keep a load's layer counts and how much of an arriving upload is there, like their events.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = (
    ("layers_done", sa.Integer),
    ("layers_total", sa.Integer),
    ("layer_bytes_done", sa.BigInteger),
    ("layer_bytes_total", sa.BigInteger),
    ("bytes_available", sa.BigInteger),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("jobs", sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
