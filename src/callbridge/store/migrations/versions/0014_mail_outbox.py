"""mail: the outbox, each event's mail settings, registrants' consent

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
# Numbered 0012 in the brief; main reached 0013 (registrant_pin) first, so this follows it.
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("listener_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=250), nullable=False),
        sa.Column("sender", sa.String(length=254), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["listener_id"], ["webcast_listener.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        for column in ("event_id", "listener_id", "state", "due_at", "claim"):
            batch_op.create_index(batch_op.f(f"ix_mail_outbox_{column}"), [column], unique=False)
    op.create_table(
        "mail_settings",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("confirmation", sa.Boolean(), nullable=False),
        sa.Column("reminders", sa.String(length=100), nullable=False),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "mail_consent",
        sa.Column("listener_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("wording", sa.Text(), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["listener_id"], ["webcast_listener.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("listener_id"),
    )
    with op.batch_alter_table("mail_consent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_consent_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_consent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_consent_event_id"))
    op.drop_table("mail_consent")
    op.drop_table("mail_settings")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        for column in ("claim", "due_at", "state", "listener_id", "event_id"):
            batch_op.drop_index(batch_op.f(f"ix_mail_outbox_{column}"))
    op.drop_table("mail_outbox")
