"""The camera registry (#16): cameras, the photos and boxes that show them, their audit trail,
and the imported official list.

Existing public camera ids stay: every ``submissions.camera_id`` becomes a camera with that id,
holding its submissions' photos (one whole-photo entry each; moderators split them when a photo
shows more than one camera), located at the mean of their locations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)
MIN_RADIUS_M = 10.0  # the registry's floor on a camera's location uncertainty


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("spread_m", sa.Float(), nullable=True),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("mount", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("merged_into", sa.String(40), sa.ForeignKey("cameras.id"), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_cameras_label", "cameras", ["label"])
    op.create_index("ix_cameras_status", "cameras", ["status"])
    op.create_table(
        "camera_photos",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(40), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column(
            "submission_id",
            sa.String(32),
            sa.ForeignKey("submissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("box_index", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("box", sa.JSON(), nullable=True),
        sa.Column("attached_at", _TS, nullable=False),
        sa.Column("attached_by", sa.String(128), nullable=False),
        sa.UniqueConstraint("submission_id", "box_index", name="uq_camera_photos_submission_box"),
    )
    op.create_index("ix_camera_photos_camera_id", "camera_photos", ["camera_id"])
    op.create_index("ix_camera_photos_submission_id", "camera_photos", ["submission_id"])
    op.create_table(
        "camera_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("camera_id", sa.String(40), nullable=False),
        sa.Column("other_camera_id", sa.String(40), nullable=True),
        sa.Column("submission_id", sa.String(32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_camera_events_camera_id", "camera_events", ["camera_id"])
    op.create_table(
        "official_cameras",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
    )
    _backfill()


def _mean(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    lat = sum(p[0] for p in points) / len(points)
    lon = sum(p[1] for p in points) / len(points)
    spread = 0.0
    for p_lat, p_lon in points:
        dp, dl = math.radians(p_lat - lat), math.radians(p_lon - lon)
        a = math.sin(dp / 2) ** 2 + math.cos(math.radians(lat)) ** 2 * math.sin(dl / 2) ** 2
        spread = max(spread, 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, a))))
    return lat, lon, spread


def _backfill() -> None:
    """One camera per existing ``submissions.camera_id``, its photos attached as whole photos."""
    subs = sa.table(
        "submissions",
        sa.column("id", sa.String),
        sa.column("created_at", _TS),
        sa.column("final_label", sa.String),
        sa.column("lat", sa.Float),
        sa.column("lon", sa.Float),
        sa.column("camera_id", sa.String),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(subs.c.id, subs.c.final_label, subs.c.lat, subs.c.lon, subs.c.camera_id)
        .where(subs.c.camera_id.is_not(None))
        .order_by(subs.c.created_at, subs.c.id)
    ).all()
    by_camera: dict[str, list[Any]] = {}
    for row in rows:
        by_camera.setdefault(str(row.camera_id), []).append(row)
    now = datetime.now(UTC)
    cameras, photos, events = _tables()
    for cam_id, members in by_camera.items():
        located = [(float(r.lat), float(r.lon)) for r in members if r.lat is not None and r.lon is not None]
        lat, lon, spread = _mean(located) if located else (None, None, None)
        radius = None if spread is None else max(spread, MIN_RADIUS_M)
        label = str(members[0].final_label or "")
        conn.execute(
            sa.insert(cameras).values(
                id=cam_id, label=label, lat=lat, lon=lon, spread_m=spread, radius_m=radius, mount=None,
                status="active", merged_into=None, note="", created_at=now, updated_at=now,
            )
        )  # fmt: skip
        for r in members:
            conn.execute(
                sa.insert(photos).values(
                    camera_id=cam_id, submission_id=r.id, box_index=0, label=str(r.final_label or label),
                    box=None, attached_at=now, attached_by="migration 0005",
                )
            )  # fmt: skip
        conn.execute(
            sa.insert(events).values(
                created_at=now, actor="migration 0005", action="create", camera_id=cam_id,
                other_camera_id=None, submission_id=None, detail={"photos": [r.id for r in members]},
            )
        )  # fmt: skip


def _tables() -> tuple[sa.TableClause, sa.TableClause, sa.TableClause]:
    cameras = sa.table(
        "cameras",
        *(sa.column(c) for c in ("id", "label", "lat", "lon", "spread_m", "radius_m", "mount", "status")),
        *(sa.column(c) for c in ("merged_into", "note", "created_at", "updated_at")),
    )
    photos = sa.table(
        "camera_photos",
        *(sa.column(c) for c in ("camera_id", "submission_id", "box_index", "label", "attached_at")),
        sa.column("attached_by"),
        sa.column("box", sa.JSON),
    )
    events = sa.table(
        "camera_events",
        *(sa.column(c) for c in ("created_at", "actor", "action", "camera_id", "other_camera_id")),
        sa.column("submission_id"),
        sa.column("detail", sa.JSON),
    )
    return cameras, photos, events


def downgrade() -> None:
    op.drop_table("official_cameras")
    op.drop_table("camera_events")
    op.drop_table("camera_photos")
    op.drop_table("cameras")
