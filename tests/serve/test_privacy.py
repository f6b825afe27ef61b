"""Faces (and plates) are blurred in every photo that leaves the moderators' eyes."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.manifest import read_manifest
from serve.exports import export_training
from serve.privacy import blur_sensitive, detect_sensitive
from serve.store import Store
from tests.serve.moderation_fixtures import database_url, new_submission, store, store_settings  # noqa: F401


@pytest.fixture(scope="module")
def face_photo() -> bytes:
    """scikit-image's astronaut: a real photo of a face (Eileen Collins, NASA, public domain)."""
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the face photo")
    buf = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _faces(img: Image.Image) -> list[tuple[int, int, int, int]]:
    return [(r.x, r.y, r.w, r.h) for r in detect_sensitive(img) if r.kind in ("face", "profile")]


def test_blur_hides_the_face(face_photo: bytes) -> None:
    img = Image.open(io.BytesIO(face_photo)).convert("RGB")
    faces = _faces(img)
    assert faces, "the cascade should find the astronaut's face"
    blurred, regions = blur_sensitive(img)
    assert regions and not _faces(blurred)
    x, y, w, h = faces[0]
    before = np.asarray(img.convert("L").crop((x, y, x + w, y + h)), dtype=np.float64)
    after = np.asarray(blurred.convert("L").crop((x, y, x + w, y + h)), dtype=np.float64)
    assert after.var() < 0.3 * before.var()
    assert np.abs(np.diff(after, axis=1)).mean() < 0.25 * np.abs(np.diff(before, axis=1)).mean()


def test_exported_photo_is_blurred_but_moderators_see_the_original(
    store: Store, face_photo: bytes, tmp_path: Path
) -> None:
    sub = store.add_submission(new_submission(0, data=face_photo, label="no_camera", decision="reject"))
    mod = store.authenticate(store.add_moderator("ana"))
    assert mod is not None
    store.review(sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=0)
    manifest = read_manifest(export_training(store, tmp_path / "export"))
    exported = Image.open(manifest.resolve(manifest.records[0])).convert("RGB")
    original = Image.open(store.photo_path(sub["id"])).convert("RGB")
    assert _faces(original), "the moderators' copy is not blurred"
    assert not _faces(exported), "a face left the store unblurred"
