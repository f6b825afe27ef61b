"""The camera registry on both databases: attaching verified photos, candidates, merge and split."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from data.boxes import LabeledBox
from serve.registry import cameras as registry
from serve.store import Camera, CameraEvent, CameraPhoto, Review, Store
from tests.serve.moderation_fixtures import (  # noqa: F401 - fixtures
    database_url,
    fake_camera,
    new_submission,
    store,
    store_settings,
)

POLE = (44.8163, 20.4602)
M_PER_DEG_LAT = 111_320.0


def north(metres: float) -> tuple[float, float]:
    """A point ``metres`` north of the pole."""
    return POLE[0] + metres / M_PER_DEG_LAT, POLE[1]


def verify(store: Store, seed: int, where: tuple[float, float] | None, boxes: list[LabeledBox] | None = None,
           label: str = "huawei_ipc6625_z30", who: str = "ana") -> dict[str, Any]:  # fmt: skip
    """Submit a photo taken at ``where`` and confirm it (with ``boxes`` when given)."""
    lat, lon = where if where else (None, None)
    sub = store.add_submission(new_submission(seed, lat=lat, lon=lon, label=label))
    mods = {m.name: m for m in store.moderators()}
    mod = mods[who] if who in mods else store.authenticate(store.add_moderator(who))
    assert mod is not None
    return store.review(
        sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=0, boxes=boxes
    )


def cameras_of(store: Store, submission_id: str) -> list[str]:
    with store.session() as s:
        rows = s.scalars(
            select(CameraPhoto)
            .where(CameraPhoto.submission_id == submission_id)
            .order_by(CameraPhoto.box_index)
        ).all()
        return [p.camera_id for p in rows]


def counts(store: Store) -> tuple[int, int, int]:
    """(camera photo entries, distinct submissions in them, reviews)."""
    with store.session() as s:
        photos = s.scalar(select(func.count()).select_from(CameraPhoto)) or 0
        subs = s.scalar(select(func.count(func.distinct(CameraPhoto.submission_id)))) or 0
        reviews = s.scalar(select(func.count()).select_from(Review)) or 0
        return photos, subs, reviews


def test_two_photos_of_one_pole_10_m_apart_are_one_camera(store: Store) -> None:
    first = verify(store, 1, north(0))
    second = verify(store, 2, north(10))
    assert cameras_of(store, first["id"]) == cameras_of(store, second["id"]) == [f"cam-{first['id']}"]
    with store.session() as s:
        view = registry.camera_json(s, f"cam-{first['id']}")
    assert view["photo_count"] == 2
    assert view["lat"] == pytest.approx(north(5)[0], abs=1e-7)  # refined: the mean of both photos
    assert view["spread_m"] == pytest.approx(5.0, abs=0.1)
    assert view["radius_m"] == pytest.approx(10.0)  # the floor on the uncertainty
    assert [e["action"] for e in view["events"]] == ["create", "attach", "attach"]
    assert view["events"][0]["by"] == "ana"


def test_far_apart_or_another_model_are_other_cameras(store: Store) -> None:
    a = verify(store, 1, north(0))
    b = verify(store, 2, north(60))
    c = verify(store, 3, north(5), label="huawei_ipc6225_vrz_es")
    assert len({*cameras_of(store, a["id"]), *cameras_of(store, b["id"]), *cameras_of(store, c["id"])}) == 3


def test_a_submission_with_two_cameras_makes_two_cameras(store: Store) -> None:
    boxes = [
        LabeledBox("huawei_ipc6625_z30", (2, 2, 20, 20)),
        LabeledBox("huawei_ipc6625_z30", (30, 2, 50, 20)),
    ]
    sub = verify(store, 1, north(0), boxes=boxes)
    ids = cameras_of(store, sub["id"])
    assert ids == [f"cam-{sub['id']}", f"cam-{sub['id']}-1"]
    # a later photo of the same pole joins one of them, never both
    again = verify(store, 2, north(3), boxes=[LabeledBox("huawei_ipc6625_z30", (1, 1, 9, 9))])
    assert cameras_of(store, again["id"]) == [ids[0]]


def test_look_alike_boxes_are_no_camera(store: Store) -> None:
    boxes = [LabeledBox("no_camera", (2, 2, 20, 20)), LabeledBox("huawei_ipc6225_vrz_es", (30, 2, 50, 20))]
    sub = verify(store, 1, north(0), boxes=boxes, label="huawei_ipc6225_vrz_es")
    with store.session() as s:
        rows = s.scalars(select(CameraPhoto).where(CameraPhoto.submission_id == sub["id"])).all()
        assert [(p.box_index, p.label, p.box) for p in rows] == [
            (1, "huawei_ipc6225_vrz_es", [30, 2, 50, 20])
        ]


def test_candidates_propose_the_near_camera(store: Store) -> None:
    first = verify(store, 1, north(0))
    verify(store, 2, north(4))
    far = verify(store, 3, north(40))  # beyond 25 m: a camera of its own, but proposed
    with store.session() as s:
        (entry,) = registry.candidates(s, far["id"], store.labels)
    assert entry["camera_id"] == f"cam-{far['id']}"
    near = [c for c in entry["candidates"] if c["camera_id"] == f"cam-{first['id']}"]
    assert near and near[0]["photo_count"] == 2
    assert near[0]["distance_m"] == pytest.approx(38.0, abs=1.0)
    assert near[0]["spread_m"] == pytest.approx(2.0, abs=0.1)  # its two photos, 4 m apart
    assert near[0]["text"] == f"same as camera cam-{first['id']}, Huawei IPC6625-Z30, 38 m away, 2 photos"


def test_assign_moves_a_box_to_the_moderators_choice(store: Store) -> None:
    first = verify(store, 1, north(0))
    far = verify(store, 2, north(40))
    with store.session(write=True) as s:
        registry.assign(s, far["id"], {0: f"cam-{first['id']}"}, store.labels, "bo")
    assert cameras_of(store, far["id"]) == [f"cam-{first['id']}"]
    with store.session(write=True) as s:
        registry.assign(s, far["id"], {0: "new"}, store.labels, "bo")
        with pytest.raises(registry.RegistryError, match="no camera box"):
            registry.assign(s, far["id"], {3: "new"}, store.labels, "bo")
    assert cameras_of(store, far["id"]) not in ([f"cam-{first['id']}"], [])


def test_merge_and_split_keep_every_photo_and_review(store: Store) -> None:
    a1, a2 = verify(store, 1, north(0)), verify(store, 2, north(4))
    b = verify(store, 3, north(40))
    cam_a, cam_b = f"cam-{a1['id']}", f"cam-{b['id']}"
    before = counts(store)
    with store.session(write=True) as s:
        merged = registry.merge(s, cam_b, cam_a, "ana", note="same pole, GPS was off")
    assert merged["photo_count"] == 3
    assert counts(store) == before
    with store.session(write=True) as s:
        entry = next(p["id"] for p in merged["photos"] if p["submission_id"] == b["id"])
        new = registry.split(s, cam_a, [entry], "bo")
    assert counts(store) == before
    assert cameras_of(store, b["id"]) == [new["id"]] and new["id"] != cam_b
    assert cameras_of(store, a2["id"]) == [cam_a]
    with store.session() as s:
        gone = s.get(Camera, cam_b)
        assert gone is not None and (gone.status, gone.merged_into) == ("merged", cam_a)
        trail = s.execute(select(CameraEvent.action, CameraEvent.actor, CameraEvent.camera_id)).all()
    assert ("merge", "ana", cam_a) in trail and ("merge", "ana", cam_b) in trail
    assert ("split", "bo", cam_a) in trail and ("split", "bo", new["id"]) in trail
    with store.session(write=True) as s:  # merged cameras take no more edits
        with pytest.raises(registry.RegistryError, match="merged into"):
            registry.merge(s, cam_b, cam_a, "ana")
        with pytest.raises(registry.RegistryError, match="at least one photo"):
            registry.split(
                s, new["id"], [p["id"] for p in registry.camera_json(s, new["id"])["photos"]], "ana"
            )


def test_two_cameras_of_one_photo_cannot_merge(store: Store) -> None:
    boxes = [
        LabeledBox("huawei_ipc6625_z30", (2, 2, 20, 20)),
        LabeledBox("huawei_ipc6625_z30", (30, 2, 50, 20)),
    ]
    sub = verify(store, 1, north(0), boxes=boxes)
    first, second = cameras_of(store, sub["id"])
    with store.session(write=True) as s, pytest.raises(registry.RegistryError, match="two cameras"):
        registry.merge(s, second, first, "ana")


def test_rereview_keeps_the_camera_and_rejection_hides_it(store: Store) -> None:
    sub = verify(store, 1, north(0))
    mod = store.authenticate(store.add_moderator("bo"))
    assert mod is not None
    store.review(sub["id"], moderator_id=mod.id, verdict="reject", label=None, revision=1)
    assert cameras_of(store, sub["id"]) == [f"cam-{sub['id']}"]  # the photo stays; it is not public
    with store.session() as s:
        assert registry.camera_json(s, f"cam-{sub['id']}")["photo_count"] == 0
    store.review(sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=2)
    assert cameras_of(store, sub["id"]) == [f"cam-{sub['id']}"]


def test_update_validates_and_audits(store: Store) -> None:
    sub = verify(store, 1, north(0))
    cam = f"cam-{sub['id']}"
    with store.session(write=True) as s:
        view = registry.update_camera(s, cam, {"mount": "pole", "status": "disputed"}, store.labels, "ana")
        assert (view["mount"], view["status"]) == ("pole", "disputed")
        assert view["events"][-1]["detail"] == {
            "before": {"mount": None, "status": "active"},
            "after": {"mount": "pole", "status": "disputed"},
        }
        with pytest.raises(registry.RegistryError, match="mount 'roof'"):
            registry.update_camera(s, cam, {"mount": "roof"}, store.labels, "ana")


def test_erasure_removes_the_photo_entry(store: Store) -> None:
    sub = verify(store, 1, north(0))
    store.delete_submission(sub["id"], by="ana", reason="asked to be forgotten")
    assert cameras_of(store, sub["id"]) == []


def test_without_location_a_repeat_joins_its_original_camera(store: Store) -> None:
    first = verify(store, 1, None)
    again = verify(store, 1, None)  # the same bytes sent again: a duplicate
    assert cameras_of(store, again["id"]) == cameras_of(store, first["id"])


def test_model_boxes_on_confirm_become_cameras(store: Store) -> None:
    cams = [fake_camera([2, 2, 20, 20]), fake_camera([30, 2, 50, 20], label="huawei_ipc6225_vrz_es")]
    sub = store.add_submission(new_submission(1, lat=POLE[0], lon=POLE[1], cameras=cams))
    mod = store.authenticate(store.add_moderator("ana"))
    assert mod is not None
    store.review(sub["id"], moderator_id=mod.id, verdict="confirm", label=None, revision=0)
    assert len(set(cameras_of(store, sub["id"]))) == 2


def test_the_migration_keeps_the_public_camera_ids(store_settings: Any) -> None:
    """Cameras that existed before the registry (submissions.camera_id) keep their ids and photos."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from serve.store import migrate, store_url
    from serve.store.store import create_db_engine

    engine = create_db_engine(store_url(store_settings))
    migrate(engine, "0004")
    now = datetime.now(UTC)
    columns = ("id, created_at, sha256, phash, photo, width, height, model_name, model_version, label, "
               "confidence, decision, probabilities, result, lat, lon, source, note, status, final_label, "
               "revision, updated_at, camera_id")  # fmt: skip
    insert = text(f"INSERT INTO submissions ({columns}) VALUES (:id, :t, :sha, 'ff', 'p.jpg', 64, 48, 'm', "
                  "'1', 'huawei_ipc6625_z30', 0.9, 'flag', '[]', '{}', :lat, :lon, '', '', 'verified', "
                  "'huawei_ipc6625_z30', 1, :t, :cam)")  # fmt: skip
    with engine.begin() as conn:
        for sid, lat, cam in (("a", 44.81, "cam-a"), ("b", 44.8101, "cam-a"), ("c", 44.9, "cam-c")):
            conn.execute(insert, {"id": sid, "t": now, "sha": sid * 64, "lat": lat, "lon": 20.46, "cam": cam})
    migrate(engine)
    with engine.begin() as conn:
        cams = conn.execute(text("SELECT id, lat, spread_m FROM cameras ORDER BY id")).all()
        photos = conn.execute(
            text("SELECT camera_id, submission_id FROM camera_photos ORDER BY submission_id")
        ).all()
    engine.dispose()
    assert [c.id for c in cams] == ["cam-a", "cam-c"]
    assert cams[0].lat == pytest.approx(44.81005) and cams[0].spread_m == pytest.approx(5.6, abs=0.1)
    assert [tuple(p) for p in photos] == [("cam-a", "a"), ("cam-a", "b"), ("cam-c", "c")]
