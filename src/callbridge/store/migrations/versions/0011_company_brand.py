"""company brand: accent colour and logo (brand/)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accent", sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column("logo", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("logo_type", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("logo_digest", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("logo_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("logo_height", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("company", schema=None) as batch_op:
        for name in ("logo_height", "logo_width", "logo_digest", "logo_type", "logo", "accent"):
            batch_op.drop_column(name)
