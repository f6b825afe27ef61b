"""Intake from every channel (#13): senders as keyed hashes, provenance, follow tokens, and the
keys of the items a channel has stored so that a mail or a post is never stored twice.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("sender_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("provenance", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("follow_hash", sa.String(64), nullable=True))
        batch.create_index("ix_submissions_sender_hash", ["sender_hash"])
        batch.create_index("ix_submissions_follow_hash", ["follow_hash"], unique=True)
    op.create_table(
        "intake_keys",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("submission_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_intake_keys_submission_id", "intake_keys", ["submission_id"])


def downgrade() -> None:
    op.drop_index("ix_intake_keys_submission_id", table_name="intake_keys")
    op.drop_table("intake_keys")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_index("ix_submissions_follow_hash")
        batch.drop_index("ix_submissions_sender_hash")
        batch.drop_column("follow_hash")
        batch.drop_column("provenance")
        batch.drop_column("sender_hash")
