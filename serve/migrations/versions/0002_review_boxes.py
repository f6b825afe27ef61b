"""Boxes as data: each review keeps the boxes it verified, each submission its current ones.

Both columns are nullable JSON, so rows written before this revision read as "no boxes".

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("submissions", sa.Column("boxes", sa.JSON(), nullable=True))
    op.add_column("reviews", sa.Column("boxes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("boxes")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("boxes")
