"""Tests for data.split: no leakage, stratification, determinism, writing the split."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from data.dedup import DuplicateReport
from data.manifest import Manifest, Record, read_manifest
from data.split import (
    SplitConfig,
    check_split,
    haversine_m,
    nearby_pairs,
    split_groups,
    split_manifest,
    write_split,
)
from tests.data.conftest import reencoded, smooth_photo

LABELS = ("huawei_ipc6625_z30", "other_camera", "no_camera")
BELGRADE = (44.8125, 20.4612)
METRE_LAT = 1 / 111_195  # degrees of latitude per metre


def no_duplicates(records: list[Record]) -> DuplicateReport:
    n = len(records)
    return DuplicateReport([r.path for r in records], [None] * n, [None] * n, 6)


def tricky_dataset(root: Path) -> Manifest:
    """Many groups, exact and near duplicates across groups, and ungrouped photos close together."""
    records: list[Record] = []
    seed = 0
    for g in range(40):  # 40 groups of 1-3 photos
        for k in range(1 + g % 3):
            seed += 1
            rel = f"g{g}_{k}.jpg"
            smooth_photo(root / rel, seed)
            records.append(Record(rel, LABELS[g % 3], f"cam{g}"))
    for d in range(6):  # exact copies filed under a different group
        src = records[d * 5]
        shutil.copy(root / src.path, root / f"copy{d}.jpg")
        records.append(Record(f"copy{d}.jpg", src.label, f"other{d}"))
    for d in range(6):  # resized re-encodes filed under a different group
        src = records[d * 7 + 1]
        reencoded(root / src.path, root / f"near{d}.jpg")
        records.append(Record(f"near{d}.jpg", src.label, f"elsewhere{d}"))
    for spot in range(8):  # ungrouped pairs 20 m apart, spots ~1 km apart
        lat, lon = BELGRADE[0] + spot * 0.01, BELGRADE[1]
        for k in range(2):
            seed += 1
            rel = f"street{spot}_{k}.jpg"
            smooth_photo(root / rel, seed)
            records.append(Record(rel, LABELS[spot % 3], "", lat=lat + k * 20 * METRE_LAT, lon=lon))
    for k in range(5):  # ungrouped, no GPS
        seed += 1
        smooth_photo(root / f"loose{k}.jpg", seed)
        records.append(Record(f"loose{k}.jpg", LABELS[k % 3], ""))
    return Manifest(root, records)


def test_split_of_tricky_data_has_zero_leaks(tmp_path: Path) -> None:
    manifest = tricky_dataset(tmp_path)
    result = split_manifest(manifest, SplitConfig(seed=3), progress=False)
    assert len(result.report.exact) == 6 and len(result.report.near_pairs) >= 6  # the traps were seen

    assert check_split(result.manifest, result.report) == []
    assert check_split(result.manifest, progress=False) == []  # recomputing the duplicates agrees
    by_path = {r.path: r.split for r in result.manifest.records}
    for spot in range(8):
        assert by_path[f"street{spot}_0.jpg"] == by_path[f"street{spot}_1.jpg"]
    assert set(by_path.values()) == {"train", "val", "test"}


def test_check_split_finds_every_kind_of_leak(tmp_path: Path) -> None:
    a = smooth_photo(tmp_path / "a.jpg", 1)
    shutil.copy(a, tmp_path / "a_copy.jpg")
    reencoded(a, tmp_path / "a_near.jpg")
    for name, seed in (("g1.jpg", 2), ("g2.jpg", 3), ("s1.jpg", 4), ("s2.jpg", 5)):
        smooth_photo(tmp_path / name, seed)
    lat, lon = BELGRADE
    records = [
        Record("a.jpg", "no_camera", "A", split="train"),
        Record("a_copy.jpg", "no_camera", "B", split="test"),
        Record("a_near.jpg", "no_camera", "C", split="val"),
        Record("g1.jpg", "other_camera", "G", split="train"),
        Record("g2.jpg", "other_camera", "G", split="val"),
        Record("s1.jpg", "other_camera", "", lat=lat, lon=lon, split="train"),
        Record("s2.jpg", "other_camera", "", lat=lat + 10 * METRE_LAT, lon=lon, split="test"),
    ]
    leaks = check_split(Manifest(tmp_path, records), progress=False)
    assert sorted(leak.kind for leak in leaks) == ["exact", "group", "near", "nearby"]
    assert any("'G'" in str(leak) for leak in leaks)


def test_unsplit_manifest_is_a_leak(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path, [Record("a.jpg", "no_camera", "a")])
    leaks = check_split(manifest, no_duplicates(manifest.records))
    assert [leak.kind for leak in leaks] == ["unassigned"]
    assert "camid data split" in str(leaks[0])


def singletons(per_label: dict[str, int]) -> Manifest:
    records = [
        Record(f"{label}/{i}.jpg", label, f"{label}-{i}") for label, n in per_label.items() for i in range(n)
    ]
    return Manifest(Path("/nonexistent"), records)


def test_stratification_follows_the_ratios_per_label() -> None:
    manifest = singletons({"huawei_ipc6625_z30": 200, "other_camera": 60, "no_camera": 400})
    result = split_manifest(manifest, report=no_duplicates(manifest.records))
    counts = result.counts()
    for label, n in {"huawei_ipc6625_z30": 200, "other_camera": 60, "no_camera": 400}.items():
        for split, ratio in zip(("train", "val", "test"), (0.7, 0.15, 0.15), strict=True):
            assert counts[split][label] == pytest.approx(ratio * n, abs=1.01)


def test_custom_ratios() -> None:
    manifest = singletons({"no_camera": 100})
    result = split_manifest(manifest, SplitConfig(ratios=(0.8, 0.2, 0.0)), no_duplicates(manifest.records))
    assert Counter(r.split for r in result.manifest.records) == {"train": 80, "val": 20}


def test_groups_of_different_sizes_stay_whole_and_every_split_gets_each_label() -> None:
    records = []
    for label, sizes in {"other_camera": [10, 1, 1], "no_camera": [5, 5, 5, 2, 1, 1]}.items():
        for g, size in enumerate(sizes):
            records += [Record(f"{label}{g}_{k}.jpg", label, f"{label}{g}") for k in range(size)]
    result = split_manifest(Manifest(Path("/x"), records), report=no_duplicates(records))
    splits_per_group: dict[str, set[str | None]] = {}
    for r in result.manifest.records:
        splits_per_group.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in splits_per_group.values())
    counts = result.counts()
    for label in ("other_camera", "no_camera"):
        assert all(counts[split][label] > 0 for split in ("train", "val", "test")), counts
    assert counts["train"]["other_camera"] == 10


def test_same_seed_same_split_other_seed_other_split() -> None:
    manifest = singletons({"other_camera": 50, "no_camera": 50})
    report = no_duplicates(manifest.records)

    def splits(seed: int) -> list[str | None]:
        return [r.split for r in split_manifest(manifest, SplitConfig(seed=seed), report).manifest.records]

    assert splits(7) == splits(7)
    assert splits(7) != splits(8)


def test_bad_ratios_are_refused() -> None:
    with pytest.raises(ValueError, match="0.7,0.15,0.15"):
        SplitConfig(ratios=(0.7, 0.3))  # type: ignore[arg-type]


def test_haversine_and_nearby_pairs() -> None:
    assert haversine_m(*BELGRADE, BELGRADE[0] + 1, BELGRADE[1]) == pytest.approx(111_195, rel=1e-3)
    lat, lon = BELGRADE
    records = [
        Record("a", "no_camera", "", lat=lat, lon=lon),
        Record("b", "no_camera", "", lat=lat + 40 * METRE_LAT, lon=lon),  # 40 m north of a
        Record("c", "no_camera", "", lat=lat + 100 * METRE_LAT, lon=lon),  # 60 m north of b
        Record("d", "no_camera", "G", lat=lat, lon=lon + 0.0001),  # grouped, 8 m east of a
        Record("e", "no_camera", "H", lat=lat, lon=lon + 0.0001),  # grouped, same spot as d
        Record("f", "no_camera", ""),  # no GPS
    ]
    # b-d and b-e are 41 m apart; d-e are both grouped, so they are not joined by distance.
    assert nearby_pairs(records, 50) == [(0, 1), (0, 3), (0, 4), (1, 3), (1, 4)]
    groups = split_groups(Manifest(Path("/x"), records), no_duplicates(records), 50)
    assert [0, 1, 3, 4] in groups and [2] in groups and [5] in groups


def test_write_split_in_place_and_to_a_new_file(tmp_path: Path) -> None:
    for i in range(12):
        smooth_photo(tmp_path / "photos" / f"{i}.jpg", seed=100 + i)
    csv_path = tmp_path / "manifest.csv"
    rows = [f"photos/{i}.jpg,{LABELS[i % 2]},g{i // 2},src,CC0,,,note{i}" for i in range(12)]
    csv_path.write_text("path,label,group,source,license,lat,lon,notes\n" + "\n".join(rows) + "\n")

    out, result = write_split(csv_path, tmp_path / "out" / "split.csv", SplitConfig(seed=1), progress=False)
    moved = read_manifest(out)
    assert [r.path for r in moved.records][0] == "../photos/0.jpg"
    assert all(r.split in {"train", "val", "test"} for r in moved.records)
    assert moved.records[5].extra == {"notes": "note5"}
    assert "split" not in csv_path.read_text().splitlines()[0]  # the source was left alone

    write_split(csv_path, config=SplitConfig(seed=1), progress=False)
    in_place = read_manifest(csv_path)
    assert [r.split for r in in_place.records] == [r.split for r in moved.records]
    assert check_split(in_place, progress=False) == []
    assert not list(tmp_path.glob(".manifest-*"))  # no temp files left behind
    assert result.groups and max(len(g) for g in result.groups) >= 2


def test_split_fills_empty_groups_so_the_result_validates(tmp_path: Path) -> None:
    from data.labels import load_labels
    from data.manifest import Manifest, Record, validate_manifest, write_manifest
    from data.split import split_manifest
    from tests.conftest import make_photo

    records = []
    for i in range(6):
        make_photo(tmp_path / f"p{i}.jpg", seed=100 + i * 7)
        near = i < 2  # p0 and p1 were taken 10 m apart: one camera
        lat = 44.8 + (0.0001 * i if near else 0.01 * i)
        records.append(Record(path=f"p{i}.jpg", label="other_camera", group="", lat=lat, lon=20.46))
    result = split_manifest(Manifest(tmp_path, records), progress=False)
    groups = [r.group for r in result.manifest.records]
    assert all(groups) and groups[0] == groups[1] and len(set(groups)) == 5
    out = write_manifest(result.manifest, tmp_path / "split.csv")
    assert validate_manifest(out, load_labels()) == []
