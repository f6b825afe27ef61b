"""The training export (and so the promotion gate) groups the verified photos by the registry's physical
cameras, on both databases."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

from pathlib import Path

from data.boxes import LabeledBox
from serve.lifecycle.promote import verified_set
from serve.registry import cameras as registry
from serve.registry.groups import camera_groups, location_groups
from serve.store import Store
from tests.serve.moderation_fixtures import (  # noqa: F401 - fixtures
    database_url,
    store,
    store_settings,
)
from tests.serve.test_registry import cameras_of, north, verify


def _by_source(store: Store, folder: Path) -> dict[str, str]:
    """Submission id -> the group column of the training export, the gate's verified set."""
    evalset = verified_set(store, folder)
    return {r.source.removeprefix("camid-submission/"): r.group for r in evalset.records}


def test_photos_of_one_camera_70_m_apart_by_gps_error_are_one_group(store: Store, tmp_path: Path) -> None:
    a = verify(store, 1, north(0))
    b = verify(store, 2, north(70))  # the phone's GPS was 70 m off: the registry made a second camera
    with store.session(write=True) as s:  # a moderator saw it is the same pole
        registry.merge(s, f"cam-{b['id']}", f"cam-{a['id']}", "ana", note="GPS was off")
    old = location_groups(store.verified())
    assert old[a["id"]] != old[b["id"]]  # the 50 m clusters split the camera between resamples
    groups = _by_source(store, tmp_path / "gate")
    assert groups[a["id"]] == groups[b["id"]] == f"camera-cam-{a['id']}"


def test_two_cameras_within_50_m_are_two_groups(store: Store, tmp_path: Path) -> None:
    a = verify(store, 1, north(0))
    same_pole = verify(store, 2, north(8))
    other = verify(store, 3, north(5), label="huawei_ipc6225_vrz_es")  # another camera, 5 m away
    old = location_groups(store.verified())
    assert old[a["id"]] == old[other["id"]]  # one 50 m cluster for two cameras
    groups = _by_source(store, tmp_path / "gate")
    assert groups[a["id"]] == groups[same_pole["id"]] != groups[other["id"]]
    assert groups[other["id"]] == f"camera-cam-{other['id']}"


def test_a_photo_of_two_cameras_joins_the_photos_of_both(store: Store) -> None:
    boxes = [
        LabeledBox("huawei_ipc6625_z30", (2, 2, 20, 20)),
        LabeledBox("huawei_ipc6225_vrz_es", (30, 2, 50, 20)),
    ]
    both = verify(store, 1, north(0), boxes=boxes, label="huawei_ipc6625_z30")
    first, second = cameras_of(store, both["id"])
    a = verify(store, 2, north(3), boxes=[LabeledBox("huawei_ipc6625_z30", (1, 1, 9, 9))])
    b = verify(store, 3, north(4), boxes=[LabeledBox("huawei_ipc6225_vrz_es", (1, 1, 9, 9))],
               label="huawei_ipc6225_vrz_es")  # fmt: skip
    assert cameras_of(store, a["id"]) == [first] and cameras_of(store, b["id"]) == [second]
    groups = camera_groups(store)
    assert groups[a["id"]] == groups[both["id"]] == groups[b["id"]]


def test_photos_without_a_camera_fall_back_to_location_clusters(store: Store) -> None:
    cam = verify(store, 1, north(0))
    near = verify(store, 2, north(10), label="no_camera")
    nearer = verify(store, 3, north(30), label="no_camera")
    far = verify(store, 4, north(500), label="no_camera")
    nowhere = verify(store, 5, None, label="no_camera")
    groups = camera_groups(store)
    assert groups[near["id"]] == groups[nearer["id"]]
    assert groups[near["id"]].startswith("loc-") and groups[near["id"]] != groups[cam["id"]]
    assert len({groups[near["id"]], groups[far["id"]], groups[nowhere["id"]]}) == 3
    assert groups[nowhere["id"]] == f"sub-{nowhere['id']}"
