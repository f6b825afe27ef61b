"""Verdict history and shadow verdicts (#15).

``verdicts``: one row per superseded verdict: which model gave it (name and version), its label,
confidence, decision and the full result, and when a newer model replaced it. The current verdict
stays on the submission row. ``shadow_verdicts``: what a shadow model (a candidate scoring new
submissions beside the live one) said, one row per submission and model. Rows of both go with
their submission (ON DELETE CASCADE: erasure removes them). ``reviews.model_version``: the model
whose verdict the moderator saw (NULL for reviews made before).

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "submission_id",
            sa.String(32),
            sa.ForeignKey("submissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
    )
    op.create_index("ix_verdicts_submission_id", "verdicts", ["submission_id"])
    op.create_table(
        "shadow_verdicts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "submission_id",
            sa.String(32),
            sa.ForeignKey("submissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.UniqueConstraint(
            "submission_id", "model_name", "model_version", name="uq_shadow_verdicts_submission_model"
        ),
    )
    op.create_index("ix_shadow_verdicts_submission_id", "shadow_verdicts", ["submission_id"])
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("model_version", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("model_version")
    op.drop_index("ix_shadow_verdicts_submission_id", table_name="shadow_verdicts")
    op.drop_table("shadow_verdicts")
    op.drop_index("ix_verdicts_submission_id", table_name="verdicts")
    op.drop_table("verdicts")
