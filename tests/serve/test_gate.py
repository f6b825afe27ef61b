"""The promotion gate's arithmetic: paired group-bootstrap differences and the refusal rule."""

from __future__ import annotations

from typing import Any

from serve.lifecycle.gate import Scored, compare_scores

CAMERAS = frozenset({"huawei_ipc6625_z30", "other_camera"})


def _table(
    truth: list[str], live: Scored, candidate: Scored, groups: list[str] | None = None
) -> dict[str, Any]:
    groups = groups or [f"g{i}" for i in range(len(truth))]
    table = compare_scores("set", truth, groups, [live, candidate], CAMERAS, n_boot=500)
    metrics: dict[str, Any] = table["metrics"]
    return metrics


def test_a_model_calling_every_photo_a_camera_is_refused_on_specificity() -> None:
    truth = ["other_camera"] * 10 + ["no_camera"] * 30
    live = Scored(tuple(["other_camera"] * 8 + ["no_camera"] * 32), tuple(["review"] * 40))
    everything = Scored(tuple(["other_camera"] * 40), tuple(["review"] * 40))
    m = _table(truth, live, everything)
    assert m["camera_recall"]["difference"]["value"] > 0 and not m["camera_recall"]["worse"]
    assert m["camera_specificity"]["candidate"]["value"] == 0.0 and m["camera_specificity"]["worse"]


def test_a_difference_the_interval_cannot_tell_apart_passes() -> None:
    truth = ["huawei_ipc6625_z30"] * 6 + ["no_camera"] * 6
    flags = ("flag",) * 6 + ("reject",) * 6
    live = Scored(tuple(truth), flags)
    one_miss = Scored(tuple(["huawei_ipc6625_z30"] * 5 + ["no_camera"] * 7), ("flag",) * 5 + ("reject",) * 7)
    m = _table(truth, live, one_miss)
    assert m["camera_recall"]["difference"]["value"] < 0  # one camera photo of six missed
    assert m["camera_recall"]["difference"]["ci95"][1] == 0.0 and not m["camera_recall"]["worse"]


def test_photos_of_one_group_are_resampled_together() -> None:
    truth = ["other_camera"] * 20
    live = Scored(tuple(truth), ("review",) * 20)
    half = Scored(tuple(["other_camera"] * 10 + ["no_camera"] * 10), ("review",) * 20)
    two_places = ["a"] * 10 + ["b"] * 10  # the candidate misses every photo of place b
    m = _table(truth, live, half, two_places)
    lo, hi = m["camera_recall"]["candidate"]["ci95"]
    assert (lo, hi) == (0.0, 1.0)  # resampling places: all of a, all of b, or both
    assert not m["camera_recall"]["worse"]  # two places cannot show it is worse
    assert _table(truth, live, half)["camera_recall"]["worse"]  # twenty independent photos can
