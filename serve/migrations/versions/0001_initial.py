"""Initial moderation schema: moderators, submissions, reviews.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "moderators",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("phash", sa.String(16), nullable=False),
        sa.Column("photo", sa.String(255), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("location_source", sa.String(16), nullable=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("duplicate_of", sa.String(32), sa.ForeignKey("submissions.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("final_label", sa.String(64), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_submissions_created_at", "submissions", ["created_at"])
    op.create_index("ix_submissions_sha256", "submissions", ["sha256"])
    op.create_index("ix_submissions_label", "submissions", ["label"])
    op.create_index("ix_submissions_duplicate_of", "submissions", ["duplicate_of"])
    op.create_index("ix_submissions_status_decision", "submissions", ["status", "decision"])
    op.create_index("ix_submissions_lat_lon", "submissions", ["lat", "lon"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("submission_id", sa.String(32), sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("moderator_id", sa.Integer(), sa.ForeignKey("moderators.id"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("label", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("model_label", sa.String(64), nullable=False),
        sa.Column("model_confidence", sa.Float(), nullable=False),
        sa.UniqueConstraint("submission_id", "revision", name="uq_reviews_submission_revision"),
    )
    op.create_index("ix_reviews_submission_id", "reviews", ["submission_id"])


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_table("submissions")
    op.drop_table("moderators")
