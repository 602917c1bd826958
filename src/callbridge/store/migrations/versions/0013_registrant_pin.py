"""registrant_pin and event.phone_requires_registration: personal PINs for phone registrants

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registrant_pin",
        sa.Column("listener_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["listener_id"], ["webcast_listener.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("listener_id"),
        sa.UniqueConstraint("digest"),
    )
    with op.batch_alter_table("registrant_pin", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registrant_pin_event_id"), ["event_id"], unique=False)
    # A plain ADD COLUMN, never a batch copy: SQLite's copy drops the old
    # event table, and with foreign keys on that deletes every row that
    # cascades from an event (claims, numbers, listeners).
    op.add_column(
        "event",
        sa.Column(
            "phone_requires_registration", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_column("phone_requires_registration")
    with op.batch_alter_table("registrant_pin", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registrant_pin_event_id"))
    op.drop_table("registrant_pin")
