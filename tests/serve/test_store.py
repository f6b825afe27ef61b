"""The moderation store: schema, atomic photo writes, duplicates, reviews, concurrency, moderators."""
# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures

from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from PIL import Image
from sqlalchemy import func, select, text

from data.boxes import LabeledBox
from data.labels import load_labels
from serve.schemas import SubmissionView
from serve.store import (
    ConflictError,
    ReviewError,
    Store,
    Submission,
    create_db_engine,
    migrate,
    open_store,
    store_url,
)
from serve.store.models import Base, Review, utcnow
from tests.serve.moderation_fixtures import (  # noqa: F401 - fixtures
    database_url,
    fake_camera,
    new_submission,
    photo_bytes,
    store,
    store_settings,
)


def test_migrations_match_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_open_twice_is_idempotent(store_settings: SimpleNamespace, store: Store) -> None:
    store.add_submission(new_submission(1))
    again = open_store(store_settings, load_labels())
    try:
        assert again.list_submissions()[1] == 1
    finally:
        again.close()


def test_photo_is_stored_once_without_metadata(store: Store) -> None:
    data = photo_bytes(3, exif_gps=True)
    first = store.add_submission(new_submission(3, data=data))
    second = store.add_submission(new_submission(3, data=data))
    assert first["duplicate_of"] is None
    assert second["duplicate_of"] == first["id"]
    files = [p for p in store.photos.root.rglob("*") if p.is_file()]
    assert len(files) == 1
    with Image.open(files[0]) as stored:
        assert dict(stored.getexif()) == {}
        assert "icc_profile" not in stored.info and "exif" not in stored.info
    assert b"SecretPhone" not in files[0].read_bytes()


def test_near_duplicates_link_only_when_close(store: Store) -> None:
    data = photo_bytes(5, size=(96, 72))
    img = Image.open(__import__("io").BytesIO(data)).convert("RGB")
    resized = __import__("io").BytesIO()
    img.resize((80, 60)).save(resized, "JPEG", quality=70)  # same picture, other bytes
    root = store.add_submission(new_submission(5, data=data, lat=44.8100, lon=20.4600))
    near = store.add_submission(new_submission(5, data=resized.getvalue(), lat=44.8102, lon=20.4601))
    far = store.add_submission(new_submission(5, data=resized.getvalue() + b"\0", lat=44.8200, lon=20.4600))
    assert near["duplicate_of"] == root["id"]
    assert far["duplicate_of"] is None
    assert store.get(root["id"])["duplicates"] == [near["id"]]


def test_review_flow_and_audit_trail(store: Store) -> None:
    mod = store.authenticate(store.add_moderator("ana"))
    assert mod is not None
    sub = store.add_submission(new_submission(7, label="other_camera", confidence=0.5, decision="review"))
    done = store.review(sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=0)
    assert (done["status"], done["label"], done["revision"]) == ("verified", "other_camera", 1)
    done = store.review(
        sub["id"], moderator_id=mod.id, verdict="correct", label="huawei_ipc6625_z30", note="PTZ", revision=1
    )
    assert (done["status"], done["final_label"]) == ("verified", "huawei_ipc6625_z30")
    done = store.review(sub["id"], moderator_id=mod.id, verdict="reject", label=None, revision=2)
    assert done["status"] == "rejected" and done["final_label"] is None
    trail = store.get(sub["id"])["reviews"]
    assert [r["verdict"] for r in trail] == ["confirm", "correct", "reject"]
    assert {r["model_label"] for r in trail} == {"other_camera"} and trail[1]["moderator"] == "ana"
    with pytest.raises(ConflictError) as stale:
        store.review(sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=1)
    assert stale.value.current["revision"] == 3


@pytest.mark.parametrize(
    ("verdict", "label"), [("confirm", "no_camera"), ("correct", None), ("correct", "a_new_thing")]
)
def test_contradictory_reviews_are_refused(store: Store, verdict: str, label: str | None) -> None:
    mod = store.authenticate(store.add_moderator("bo"))
    assert mod is not None
    sub = store.add_submission(new_submission(8))
    with pytest.raises(ReviewError):
        store.review(sub["id"], moderator_id=mod.id, verdict=verdict, label=label, revision=0)
    assert store.get(sub["id"])["revision"] == 0


def test_list_orders_by_uncertainty_and_filters(store: Store) -> None:
    specs = [("flag", 0.95), ("review", 0.7), ("reject", 0.3), ("review", 0.4)]
    ids = [
        store.add_submission(new_submission(20 + i, decision=d, confidence=c))["id"]
        for i, (d, c) in enumerate(specs)
    ]
    items, total = store.list_submissions()
    assert total == 4
    assert [i["id"] for i in items] == [ids[3], ids[1], ids[2], ids[0]]
    items, total = store.list_submissions(decision="review", limit=1, offset=1)
    assert total == 2 and [i["id"] for i in items] == [ids[1]]
    assert [i["id"] for i in store.list_submissions(order="time")[0]] == ids


def test_moderators_add_list_revoke(store: Store) -> None:
    token = store.add_moderator("ana")
    assert len(token) > 40
    with pytest.raises(ValueError, match="exists already"):
        store.add_moderator("ana")
    assert store.authenticate(token).active  # type: ignore[union-attr]
    assert store.authenticate(token + "x") is None
    store.revoke_moderator("ana")
    assert store.authenticate(token).active is False  # type: ignore[union-attr]
    assert [m.name for m in store.moderators()] == ["ana"]
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM moderators").scalar_one()
    assert token not in stored


def test_failed_commit_removes_the_new_photo(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(Store, "_find_duplicate", broken)
    with pytest.raises(RuntimeError):
        store.add_submission(new_submission(9))
    assert not [p for p in store.photos.root.rglob("*") if p.is_file()]


def test_sweep_removes_orphans_and_temp_files(store: Store) -> None:
    kept = store.add_submission(new_submission(10))
    orphan = store.photos.root / "ab" / ("ab" + "0" * 62 + ".jpg")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x")
    tmp = store.photos.root / "cd" / ".x.jpg.1234.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"x")
    assert store.sweep() == 2
    assert not orphan.exists() and not tmp.exists()
    assert store.photo_path(kept["id"]).is_file()


def test_concurrent_reviewers_lose_and_duplicate_nothing(store: Store) -> None:
    """20 reviewer threads race over 100 submissions, each retrying on 409 until its review lands."""
    n_subs, n_threads, per_thread = 100, 20, 25
    subs = [store.add_submission(new_submission(1000 + i))["id"] for i in range(n_subs)]
    mods = [store.authenticate(store.add_moderator(f"m{i}")) for i in range(n_threads)]
    conflicts = 0
    lock = threading.Lock()

    def reviewer(k: int) -> int:
        nonlocal conflicts
        rng = random.Random(k)
        mod = mods[k]
        assert mod is not None
        for _ in range(per_thread):
            sid = rng.choice(subs)
            revision = store.get(sid)["revision"]
            while True:
                try:
                    store.review(sid, moderator_id=mod.id, verdict="confirm", label=None, revision=revision)
                    break
                except ConflictError as exc:
                    with lock:
                        conflicts += 1
                    revision = exc.current["revision"]
        return per_thread

    with ThreadPoolExecutor(n_threads) as pool:
        landed = sum(pool.map(reviewer, range(n_threads)))
    with store.session() as s:
        n_reviews = s.scalar(select(func.count()).select_from(Review))
        revisions = s.scalar(select(func.sum(Submission.revision)))
        pairs = s.execute(select(Review.submission_id, Review.revision)).all()
    assert landed == n_reviews == revisions == n_threads * per_thread
    assert len(set(pairs)) == len(pairs)
    for sid in subs:  # each submission's revisions are exactly 1..n
        revs = [r["revision"] for r in store.get(sid)["reviews"]]
        assert revs == list(range(1, len(revs) + 1))
    print(f"concurrency: {n_reviews} reviews by {n_threads} threads, {conflicts} stale-revision retries")


def test_sqlite_is_in_wal_mode(store: Store, tmp_path: Path) -> None:
    if not store.is_sqlite:
        pytest.skip("SQLite only")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


TWO_CAMERAS = [fake_camera([10, 5, 30, 20]), fake_camera([40, 8, 60.5, 40], "huawei_ipc6225_vrz_es", 0.7)]


def test_each_review_keeps_its_boxes(store: Store) -> None:
    mod = store.authenticate(store.add_moderator("ana"))
    assert mod is not None
    sub = store.add_submission(new_submission(40, cameras=TWO_CAMERAS))  # a 64x48 photo
    assert (sub["camera_count"], sub["boxes"], sub["width"], sub["height"]) == (2, None, 64, 48)
    confirmed = store.review(sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=0)
    model_boxes = [{"label": c["label"], "box": c["box"]} for c in TWO_CAMERAS]
    assert confirmed["boxes"] == model_boxes  # the moderator agreed with the model's boxes
    drawn = [LabeledBox("other_camera", (1.5, 2, 63, 47.5))]
    store.review(
        sub["id"], moderator_id=mod.id, verdict="correct", label="other_camera", revision=1, boxes=drawn
    )
    store.review(sub["id"], moderator_id=mod.id, verdict="reject", label=None, revision=2)
    view = store.get(sub["id"])
    assert [r["boxes"] for r in view["reviews"]] == [
        model_boxes,
        [{"label": "other_camera", "box": [1.5, 2.0, 63.0, 47.5]}],
        None,
    ]
    assert view["boxes"] is None and view["camera_count"] == 2  # rejected: back to the model's view


@pytest.mark.parametrize(
    ("verdict", "label", "box"),
    [
        ("confirm", None, LabeledBox("huawei_ipc6625_z30", (10, 10, 65, 20))),  # wider than the photo
        ("confirm", None, LabeledBox("huawei_ipc6625_z30", (-1, 10, 20, 20))),
        ("confirm", None, LabeledBox("huawei_ipc6625_z30", (10, 10, 20, 48.5))),  # lower than the photo
        ("confirm", None, LabeledBox("a_new_thing", (10, 10, 20, 20))),
        ("confirm", None, LabeledBox("other_camera", (10, 10, 10.5, 20))),  # under a pixel wide
        ("reject", None, LabeledBox("other_camera", (10, 10, 20, 20))),
    ],
)
def test_bad_boxes_are_refused_and_store_nothing(
    store: Store, verdict: str, label: str | None, box: LabeledBox
) -> None:
    mod = store.authenticate(store.add_moderator("bo"))
    assert mod is not None
    sub = store.add_submission(new_submission(41, cameras=TWO_CAMERAS))
    with pytest.raises(ReviewError, match="box"):
        store.review(sub["id"], moderator_id=mod.id, verdict=verdict, label=label, revision=0, boxes=[box])
    after = store.get(sub["id"])
    assert (after["revision"], after["reviews"], after["boxes"], after["status"]) == (0, [], None, "pending")


def test_rows_written_before_the_boxes_migration_still_read(store_settings: SimpleNamespace) -> None:
    engine = create_db_engine(store_url(store_settings))
    migrate(engine, "0001")
    old = Store(engine, store_settings.data_dir, load_labels())
    mod = old.authenticate(old.add_moderator("ana"))
    assert mod is not None
    new = new_submission(42, label="other_camera")  # no "cameras": a result from before localization
    rel, _ = old.photos.put(new.sha256, new.image)
    with engine.begin() as conn:  # the columns of revision 0001 only
        conn.execute(
            text(
                "INSERT INTO submissions (id, created_at, sha256, phash, photo, width, height, model_name,"
                " model_version, label, confidence, decision, probabilities, result, source, note, status,"
                " final_label, revision, updated_at) VALUES ('old1', :t, :sha, :ph, :rel, 64, 48, 'm', '1',"
                " 'other_camera', 0.5, 'review', '[]', :result, '', '', 'verified', 'other_camera', 1, :t)"
            ),
            {"t": utcnow(), "sha": new.sha256, "ph": new.phash, "rel": rel, "result": json.dumps(new.result)},
        )
        conn.execute(
            text(
                "INSERT INTO reviews (submission_id, revision, moderator_id, created_at, verdict, label,"
                " note, model_label, model_confidence) VALUES ('old1', 1, :mod, :t, 'confirm',"
                " 'other_camera', '', 'other_camera', 0.5)"
            ),
            {"mod": mod.id, "t": utcnow()},
        )
    engine.dispose()
    store = open_store(store_settings, load_labels())  # migrates to head
    try:
        view = store.get("old1")
        assert (view["boxes"], view["camera_count"], view["result"]["label"]) == (None, 0, "other_camera")
        assert view["reviews"][0]["boxes"] is None
        assert SubmissionView.model_validate(view).result.cameras == []
        again = store.review("old1", moderator_id=mod.id, verdict="confirm", label=None, revision=1)
        assert again["boxes"] == [] and [r["boxes"] for r in again["reviews"]] == [None, []]
    finally:
        store.close()
