"""Erasure and stable camera ids: the ``deletions`` audit table and ``submissions.camera_id``.

``camera_id`` is filled for the verified target photos that exist already with the same rule the
cameras export used until now (``cam-<first submission id>`` per label within 25 m), so the ids
the public map shows today do not change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)
CAMERA_RADIUS_M = 25.0


def upgrade() -> None:
    op.create_table(
        "deletions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("submission_id", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("deleted_at", _TS, nullable=False),
        sa.Column("deleted_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("photo_removed", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_deletions_submission_id", "deletions", ["submission_id"])
    op.create_index("ix_deletions_sha256", "deletions", ["sha256"])
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("camera_id", sa.String(40), nullable=True))
        batch.create_index("ix_submissions_camera_id", ["camera_id"])
    _backfill_camera_ids()


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, a)))


def _backfill_camera_ids() -> None:
    """The export's clustering of revision 0002, frozen here: per label, a photo joins the first
    camera whose centroid lies within 25 m, else it starts ``cam-<its id>``."""
    subs = sa.table(
        "submissions",
        sa.column("id", sa.String),
        sa.column("created_at", _TS),
        sa.column("status", sa.String),
        sa.column("final_label", sa.String),
        sa.column("lat", sa.Float),
        sa.column("lon", sa.Float),
        sa.column("camera_id", sa.String),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(subs.c.id, subs.c.final_label, subs.c.lat, subs.c.lon)
        .where(subs.c.status == "verified", subs.c.final_label.is_not(None))
        .where(subs.c.lat.is_not(None), subs.c.lon.is_not(None))
        .order_by(subs.c.created_at, subs.c.id)
    ).all()
    cameras: list[tuple[str, str, list[tuple[float, float]]]] = []  # id, label, points
    for row in rows:
        lat, lon = float(row.lat), float(row.lon)
        for cam_id, label, points in cameras:  # noqa: B007 - the match is kept after break
            c_lat = sum(p[0] for p in points) / len(points)
            c_lon = sum(p[1] for p in points) / len(points)
            if label == row.final_label and _distance_m(c_lat, c_lon, lat, lon) <= CAMERA_RADIUS_M:
                points.append((lat, lon))
                break
        else:
            cam_id = f"cam-{row.id}"
            cameras.append((cam_id, str(row.final_label), [(lat, lon)]))
        conn.execute(sa.update(subs).where(subs.c.id == row.id).values(camera_id=cam_id))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_index("ix_submissions_camera_id")
        batch.drop_column("camera_id")
    op.drop_table("deletions")
