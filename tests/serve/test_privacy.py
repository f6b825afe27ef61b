"""Faces (and plates) are blurred in every photo that leaves the moderators' eyes."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.manifest import read_manifest
from serve import privacy
from serve.exports import export_training
from serve.privacy import PrivacyError, blur_sensitive, detect_sensitive, tile_spans
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


@pytest.fixture(scope="module")
def passer_by() -> tuple[bytes, tuple[int, int, int, int]]:
    """A 2400x1800 street-like photo with the astronaut's face 40 px tall in it, and the face's box.

    At this size the old detection (cascades on a 1024 px copy, 20 px minimum) saw a 17 px face
    and missed it.
    """
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the face photo")
    rng = np.random.default_rng(0)
    ramp = np.linspace(60, 200, 2400)[None, :, None] * np.ones((1800, 1, 3))
    street = np.clip(ramp + rng.normal(0, 12, (1800, 2400, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(street)
    head = Image.fromarray(skdata.astronaut()).crop((131, 8, 321, 228))  # face box (176, 60)-(276, 176)
    scale = 40 / 116  # face 116 px tall in the source
    head = head.resize((round(head.width * scale), round(head.height * scale)), Image.Resampling.LANCZOS)
    x, y = 1500, 900
    img.paste(head, (x, y))
    face = (x + round(45 * scale), y + round(52 * scale), x + round(145 * scale), y + round(168 * scale))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue(), face


def test_a_small_passer_by_is_blurred_in_the_export(
    store: Store, passer_by: tuple[bytes, tuple[int, int, int, int]], tmp_path: Path
) -> None:
    data, face = passer_by
    sub = store.add_submission(new_submission(1, data=data, label="no_camera", decision="reject"))
    mod = store.authenticate(store.add_moderator("ana"))
    assert mod is not None
    store.review(sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=0)
    manifest = read_manifest(export_training(store, tmp_path / "export"))
    exported = np.asarray(Image.open(manifest.resolve(manifest.records[0])).convert("L"), dtype=np.float64)
    original = np.asarray(Image.open(store.photo_path(sub["id"])).convert("L"), dtype=np.float64)
    assert exported.shape == original.shape
    x0, y0, x1, y1 = face
    before, after = original[y0:y1, x0:x1], exported[y0:y1, x0:x1]
    assert np.abs(after - before).mean() > 10, "the face was not changed"
    assert np.abs(np.diff(after, axis=1)).mean() < 0.25 * np.abs(np.diff(before, axis=1)).mean()
    rest = np.ones(original.shape, dtype=bool)
    rest[y0 - 40 : y1 + 40, x0 - 40 : x1 + 40] = False  # the face and the blur's margin
    changed = np.abs(exported - original) > 20
    assert changed[rest].mean() < 0.001, "the blur spread beyond the face"


@pytest.mark.parametrize("length", [300, 1024, 1025, 3024, 4032, 4096])
def test_tiles_cover_the_photo_so_every_small_face_lies_whole_in_one(length: int) -> None:
    spans = tile_spans(length)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(b - a <= privacy.TILE_SIDE for a, b in spans)
    for start in range(0, length - privacy.TILE_OVERLAP + 1, 7):  # a face of TILE_OVERLAP px at start
        assert any(a <= start and start + privacy.TILE_OVERLAP <= b for a, b in spans), start


def test_without_the_face_model_nothing_leaves_unblurred(
    monkeypatch: pytest.MonkeyPatch, face_photo: bytes
) -> None:
    privacy._face_net.cache_clear()
    monkeypatch.setattr(privacy, "FACE_PACKAGE", "camid_no_such_face_model")
    try:
        with pytest.raises(PrivacyError, match="pip install"):
            blur_sensitive(Image.open(io.BytesIO(face_photo)).convert("RGB"))
    finally:
        privacy._face_net.cache_clear()
