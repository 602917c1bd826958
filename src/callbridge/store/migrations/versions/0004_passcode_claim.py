"""passcode claims: the database keeps passcodes unique among events not archived

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLES = (("passcode", "listener"), ("speaker_passcode", "speaker"), ("replay_passcode", "replay"))


def upgrade() -> None:
    claim = op.create_table(
        "passcode_claim",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code"),
    )
    with op.batch_alter_table("passcode_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_passcode_claim_event_id"), ["event_id"], unique=False)
    # Claims for the events already stored. The older event keeps a code that
    # a check-then-insert race once gave to two events.
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, passcode, speaker_passcode, replay_passcode FROM event "
            "WHERE state != 'archived' ORDER BY id"
        )
    )
    taken: set[str] = set()
    claims: list[dict[str, object]] = []
    for row in rows:
        for column, role in ROLES:
            code = getattr(row, column)
            if code not in taken:
                taken.add(code)
                claims.append({"code": code, "event_id": row.id, "role": role})
    if claims:
        op.bulk_insert(claim, claims)


def downgrade() -> None:
    with op.batch_alter_table("passcode_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_passcode_claim_event_id"))
    op.drop_table("passcode_claim")
