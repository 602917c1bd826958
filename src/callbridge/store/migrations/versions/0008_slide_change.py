"""slide changes: which slide the moderator showed, and when

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 23:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slide_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("slide", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("slide_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slide_change_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slide_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slide_change_event_id"))
    op.drop_table("slide_change")
