"""origin_lease: the active origin's lease, with its epoch; replay_coverage

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
# After 0015 (transcript edits), which reached main first.
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "origin_lease",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # The one row every origin competes for: held by nobody, expired long ago.
    op.bulk_insert(table, [{"name": "origin", "holder": "", "epoch": 0, "expires": 0.0}])
    # How much of each call each origin's replay holds: the one with the most serves it.
    op.create_table(
        "replay_coverage",
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.String(length=32), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "node_id"),
    )


def downgrade() -> None:
    op.drop_table("replay_coverage")
    op.drop_table("origin_lease")
