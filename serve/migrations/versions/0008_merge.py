"""One head again: the registry (0005), intake (0006) and verdict history (0007) branches, which
all grew from 0004 side by side, meet here. No schema change.

Revision ID: 0008
Revises: 0005, 0006, 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

revision = "0008"
down_revision: tuple[str, ...] = ("0005", "0006", "0007")
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
