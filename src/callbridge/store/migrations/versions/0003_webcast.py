"""webcast: registration mode and glossary per event, webcast listeners

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "registration", sa.String(length=16), nullable=False, server_default="required"
            )
        )
        batch_op.add_column(sa.Column("glossary", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "webcast_listener",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("firm", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_heard_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_heard_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("live_seconds", sa.Integer(), nullable=False),
        sa.Column("replay_seconds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    with op.batch_alter_table("webcast_listener", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webcast_listener_event_id"), ["event_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webcast_listener", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webcast_listener_event_id"))
    op.drop_table("webcast_listener")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_column("glossary")
        batch_op.drop_column("registration")
