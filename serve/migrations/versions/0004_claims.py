"""Claims on queue items: a moderator's lease on a submission, so two moderators don't collide.

``claimed_by`` is the moderator's name, ``claimed_until`` when the lease runs out; both are
NULL when nobody holds the item. Four-eyes publication needs no column: its first approval
leaves the submission in status ``awaiting_second``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
