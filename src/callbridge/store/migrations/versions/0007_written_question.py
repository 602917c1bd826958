"""written questions: web listeners' questions and what the moderator did with them

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "written_question",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("listener_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("firm", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["listener_id"], ["webcast_listener.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("written_question", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_written_question_event_id"), ["event_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_written_question_listener_id"), ["listener_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("written_question", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_written_question_listener_id"))
        batch_op.drop_index(batch_op.f("ix_written_question_event_id"))
    op.drop_table("written_question")
