"""bridge_node: each cascade node's role and heartbeat

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bridge_node",
        sa.Column("node_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("sip", sa.String(length=64), nullable=False),
        sa.Column("callers", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )
    with op.batch_alter_table("bridge_node", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bridge_node_last_seen"), ["last_seen"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bridge_node", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bridge_node_last_seen"))
    op.drop_table("bridge_node")
