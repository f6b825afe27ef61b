"""Erasure and retention in the store: deletion with its audit row, the retention purge, private
file modes, token rotation, and camera ids that survive their first photo (SQLite and PostgreSQL)."""
# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from sqlalchemy import func, select, text, update

from data.labels import load_labels
from serve.registry.public import PublicCamera, public_cameras
from serve.store import NotFoundError, Store, create_db_engine, migrate, open_store, store_url
from serve.store.models import Deletion, Review, Submission, utcnow
from serve.store.photos import save_jpeg
from tests.serve.moderation_fixtures import (  # noqa: F401 - fixtures
    database_url,
    new_submission,
    photo_bytes,
    store,
    store_settings,
)

TARGET = "huawei_ipc6625_z30"


def _moderator(store: Store, name: str = "ana") -> int:
    mod = store.authenticate(store.add_moderator(name))
    assert mod is not None
    return mod.id


def _verified(store: Store, mod: int, seed: int, lat: float | None = None, lon: float | None = None) -> str:
    sid = str(store.add_submission(new_submission(seed, lat=lat, lon=lon))["id"])
    store.review(sid, moderator_id=mod, verdict="confirm", label=None, revision=0)
    return sid


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("camid.sqlite3"))


def test_delete_removes_the_photo_and_every_copy_and_keeps_an_audit_row(store: Store) -> None:
    mod = _moderator(store)
    new = new_submission(1, lat=44.81234, lon=20.46123)
    sub = store.add_submission(
        new.__class__(**{**new.__dict__, "note": "my flat is on the 3rd floor", "source": "app"})
    )
    store.review(sub["id"], moderator_id=mod, verdict="confirm", label=None, revision=0)
    photo = store.photo_path(sub["id"])
    rel = photo.relative_to(store.photos.root).as_posix()
    with Image.open(photo) as img:
        save_jpeg(img, store.photos.public_path(rel))  # the blurred copy an export caches
        save_jpeg(img, store.photos.public_path(rel).with_name(Path(rel).stem + "_thumb.jpg"))
    assert len(_files(store.data_dir)) == 3  # the photo, its blurred copy, a thumbnail

    row = store.delete_submission(sub["id"], by="ana", reason="erasure request from the photographer")

    assert _files(store.data_dir) == []
    with pytest.raises(NotFoundError):
        store.get(sub["id"])
    assert store.list_submissions()[1] == 0
    assert (row["submission_id"], row["sha256"], row["deleted_by"]) == (sub["id"], new.sha256, "ana")
    assert (row["status"], row["photo_removed"], row["reason"]) == (
        "verified",
        True,
        "erasure request from the photographer",
    )
    assert store.deletions() == [row]
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Review)) == 0
        audit = s.execute(select(Deletion)).scalars().one()
    kept = json.dumps({c: str(getattr(audit, c)) for c in Deletion.__table__.columns.keys()})
    for secret in ("3rd floor", "44.81", "20.46", "SecretPhone"):
        assert secret not in kept


def test_delete_keeps_other_submissions_their_photo_reviews_and_cameras(store: Store) -> None:
    mod = _moderator(store)
    data = photo_bytes(2)
    first = _verified(store, mod, 2, lat=44.81, lon=20.46)
    again = store.add_submission(new_submission(2, data=data, lat=44.81, lon=20.46))  # same bytes
    third = store.add_submission(new_submission(2, data=data))
    assert again["duplicate_of"] == first and third["duplicate_of"] == first
    store.review(again["id"], moderator_id=mod, verdict="confirm", label=None, revision=0)

    row = store.delete_submission(first, by="ana", reason="spam")

    assert row["photo_removed"] is False  # `again` sent the same file and keeps it
    assert store.photo_path(again["id"]).is_file()
    kept = store.get(again["id"])
    assert kept["duplicate_of"] is None and kept["duplicates"] == [third["id"]]
    assert [r["verdict"] for r in kept["reviews"]] == ["confirm"]
    (camera,) = _public(store)
    assert camera.id == f"cam-{first}" and camera.photo_count == 1
    with pytest.raises(NotFoundError):
        store.delete_submission(first, by="ana", reason="twice")


def _public(store: Store) -> list[PublicCamera]:
    """The cameras of the public map (the registry, #16)."""
    with store.session() as s:
        return public_cameras(s, load_labels())


def test_a_camera_keeps_its_id_when_its_first_photo_is_rejected_or_deleted(store: Store) -> None:
    mod = _moderator(store)
    a = _verified(store, mod, 3, lat=44.81, lon=20.46)
    b = _verified(store, mod, 4, lat=44.81005, lon=20.46005)  # 7 m away: the same camera
    c = _verified(store, mod, 5, lat=44.81010, lon=20.46010)
    assert [cam.id for cam in _public(store)] == [f"cam-{a}"]

    store.review(a, moderator_id=mod, verdict="reject", label=None, revision=1)
    (camera,) = _public(store)
    assert camera.id == f"cam-{a}" and camera.photo_count == 2

    store.delete_submission(b, by="ana", reason="erasure request")
    (camera,) = _public(store)
    assert camera.id == f"cam-{a}" and camera.photo_count == 1

    store.review(a, moderator_id=mod, verdict="confirm", label=None, revision=2)  # back on the map
    (camera,) = _public(store)
    assert camera.id == f"cam-{a}" and camera.photo_count == 2
    store.review(c, moderator_id=mod, verdict="correct", label="huawei_ipc6225_vrz_es", revision=1)
    ids = sorted(cam.id for cam in _public(store))
    assert ids == sorted([f"cam-{a}", f"cam-{c}"])  # another model: another camera, its own id


def _reject(store: Store, mod: int, seed: int, days_ago: float) -> str:
    sid = str(store.add_submission(new_submission(seed))["id"])
    store.review(sid, moderator_id=mod, verdict="reject", label=None, revision=0)
    with store.session(write=True) as s:
        s.execute(
            update(Submission)
            .where(Submission.id == sid)
            .values(updated_at=utcnow() - timedelta(days=days_ago))
        )
    return sid


def test_purge_deletes_only_rejections_older_than_the_retention_period(store: Store) -> None:
    mod = _moderator(store)
    old = _reject(store, mod, 10, days_ago=91)
    recent = _reject(store, mod, 11, days_ago=89)
    verified = _verified(store, mod, 12)
    pending = store.add_submission(new_submission(13))["id"]
    with store.session(write=True) as s:  # old, but not rejected: kept whatever its age
        s.execute(update(Submission).values(created_at=utcnow() - timedelta(days=400)))
    old_photo = store.photo_path(old)

    rows = store.purge_rejected(timedelta(days=90))

    assert [r["submission_id"] for r in rows] == [old]
    assert rows[0]["deleted_by"] == "retention" and "90 days" in rows[0]["reason"]
    assert not old_photo.exists()
    left = {i["id"] for i in store.list_submissions(limit=10)[0]}
    assert left == {recent, verified, pending}
    assert store.purge_rejected(timedelta(days=90)) == []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_stored_files_are_private(store: Store) -> None:
    sub = store.add_submission(new_submission(20))
    photo = store.photo_path(sub["id"])
    rel = photo.relative_to(store.photos.root).as_posix()
    exports_copy = store.photos.public_path(rel)
    with Image.open(photo) as img:
        save_jpeg(img, exports_copy)
    for path in (photo, exports_copy):
        assert _mode(path) == 0o600, path
    for folder in (
        store.data_dir,
        store.photos.root,
        photo.parent,
        store.photos.public_root,
        exports_copy.parent,
    ):
        assert _mode(folder) == 0o700, folder
    if store.is_sqlite:
        db = store.data_dir / "camid.sqlite3"
        for path in (db, db.with_name("camid.sqlite3-wal")):
            assert _mode(path) == 0o600, path


def test_files_of_an_older_install_are_made_private_on_start(store_settings: SimpleNamespace) -> None:
    first = open_store(store_settings, load_labels())
    photo = first.photo_path(first.add_submission(new_submission(21))["id"])
    first.close()
    data_dir = Path(store_settings.data_dir)
    for path in (data_dir, photo.parent):
        path.chmod(0o755)
    photo.chmod(0o644)
    if store_settings.database_url is None:
        (data_dir / "camid.sqlite3").chmod(0o644)
    again = open_store(store_settings, load_labels())
    again.close()
    assert (_mode(data_dir), _mode(photo.parent), _mode(photo)) == (0o700, 0o700, 0o600)
    if store_settings.database_url is None:
        assert _mode(data_dir / "camid.sqlite3") == 0o600


def test_rotation_replaces_the_token_and_a_revoked_name_can_be_reissued(store: Store) -> None:
    old = store.add_moderator("ana")
    mod = store.authenticate(old)
    assert mod is not None
    sid = store.add_submission(new_submission(30))["id"]
    store.review(sid, moderator_id=mod.id, verdict="confirm", label=None, revision=0)

    new = store.rotate_moderator("ana")
    assert store.authenticate(old) is None
    assert store.authenticate(new) == mod  # the same account: the audit trail keeps its name

    store.revoke_moderator("ana")
    store.add_moderator("bo")
    with pytest.raises(ValueError, match="rotate"):
        store.add_moderator("bo")  # an active account is never taken over
    again = store.add_moderator("ana")  # reissued
    back = store.authenticate(again)
    assert back is not None and back.active and back.id == mod.id
    assert store.authenticate(new) is None
    assert store.get(sid)["reviews"][0]["moderator"] == "ana"
    with pytest.raises(NotFoundError):
        store.rotate_moderator("nobody")


def test_migration_0003_gives_existing_cameras_the_ids_the_map_showed(
    store_settings: SimpleNamespace,
) -> None:
    engine = create_db_engine(store_url(store_settings))
    migrate(engine, "0002")
    rows = [  # id, minutes after the first, label, lat, lon: b joins a, d is far, c another model
        ("a", 0, TARGET, 44.81, 20.46),
        ("b", 1, TARGET, 44.81005, 20.46005),
        ("c", 2, "huawei_ipc6225_vrz_es", 44.81, 20.46),
        ("d", 3, TARGET, 44.82, 20.47),
    ]
    start = utcnow()
    with engine.begin() as conn:
        for sid, minutes, label, lat, lon in rows:
            conn.execute(
                text(
                    "INSERT INTO submissions (id, created_at, sha256, phash, photo, width, height,"
                    " model_name, model_version, label, confidence, decision, probabilities, result, lat,"
                    " lon, source, note, status, final_label, revision, updated_at) VALUES (:id, :t,"
                    " :sha, '0', :rel, 64, 48, 'm', '1', :label, 0.9, 'flag', '[]', '{}', :lat, :lon, '',"
                    " '', 'verified', :label, 1, :t)"
                ),
                {
                    "id": sid,
                    "t": start + timedelta(minutes=minutes),
                    "sha": sid * 64,
                    "rel": f"{sid * 2}/{sid * 64}.jpg",
                    "label": label,
                    "lat": lat,
                    "lon": lon,
                },
            )
    migrate(engine)
    with engine.connect() as conn:
        got = dict(conn.execute(text("SELECT id, camera_id FROM submissions")).all())
    engine.dispose()
    assert got == {"a": "cam-a", "b": "cam-a", "c": "cam-c", "d": "cam-d"}
