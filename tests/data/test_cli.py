"""Tests for ``camid data …`` (data.cli.main), including the real photo sets when present."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from data.boxes import parse_boxes, record_boxes
from data.cli import main
from data.manifest import read_manifest
from tests.data.conftest import smooth_photo


def small_manifest(root: Path, n: int = 12) -> Path:
    lines = ["path,label,group,source,license,lat,lon"]
    for i in range(n):
        smooth_photo(root / "photos" / f"{i}.jpg", seed=200 + i)
        label = ("other_camera", "no_camera")[i % 2]
        lines.append(f"photos/{i}.jpg,{label},g{i // 2},test,CC0,,")
    path = root / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_validate_ok_prints_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(small_manifest(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "other_camera" in out and out.rstrip().endswith("OK")


def test_validate_prints_every_problem_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_manifest(tmp_path, 2)
    path.write_text(path.read_text() + "photos/missing.jpg,cameraz,g9,,,95,20\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "row 3, column 'label'" in out and "cameraz" in out
    assert "row 3, column 'path'" in out and "row 3, column 'lat'" in out


def test_split_then_check_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_manifest(tmp_path)
    out_csv = tmp_path / "split.csv"
    assert main(["split", str(path), "--out", str(out_csv), "--seed", "3", "--ratios", "0.5,0.25,0.25"]) == 0
    printed = capsys.readouterr().out
    assert "exact duplicates: 0 sets" in printed and "leaks: 0" in printed
    assert printed.splitlines()[4].split()[:4] == ["label", "train", "val", "test"]
    assert main(["check-split", str(out_csv)]) == 0
    assert "no leaks" in capsys.readouterr().out

    # Move one photo of a two-photo group into another split: check-split must fail.
    rows = out_csv.read_text().splitlines()
    first = rows[1].split(",")
    partner = next(r.split(",") for r in rows[2:] if r.split(",")[2] == first[2])
    first[7] = next(s for s in ("train", "val", "test") if s != partner[7])
    out_csv.write_text("\n".join([rows[0], ",".join(first), *rows[2:]]) + "\n")
    assert main(["check-split", str(out_csv)]) == 1
    assert "LEAK group" in capsys.readouterr().out


def test_split_rejects_bad_ratios(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["split", str(tmp_path / "m.csv"), "--ratios", "0.7,0.3"])
    assert exc.value.code == 2


def test_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(small_manifest(tmp_path, 4))]) == 0
    out = capsys.readouterr().out
    assert "form_factor" in out and "total" in out


def test_import_folder_and_coco(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smooth_photo(tmp_path / "src" / "no_camera" / "a.jpg", 1)
    assert main(["import", "folder", str(tmp_path / "src"), "--out", str(tmp_path / "out1")]) == 0
    assert "no_camera" in capsys.readouterr().out
    assert len(read_manifest(tmp_path / "out1" / "manifest.csv").records) == 1

    doc = {
        "images": [{"id": 1, "file_name": "src/no_camera/a.jpg"}],
        "categories": [{"id": 7, "name": "camera"}],
        "annotations": [{"image_id": 1, "category_id": 7, "bbox": [4, 4, 20, 20]}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(doc))
    args = ["import", "coco", str(tmp_path / "coco.json"), "--out", str(tmp_path / "out2")]
    assert main([*args, "--class-map", "camera=other_camera", "--margin", "0.1"]) == 0
    assert read_manifest(tmp_path / "out2" / "manifest.csv").records[1].label == "other_camera"
    assert main(args) == 2  # unmapped class: an error message, not a traceback
    assert "--class-map" in capsys.readouterr().err


def test_import_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smooth_photo(tmp_path / "photos" / "x.jpg", 1)
    (tmp_path / "s.csv").write_text("file,camera,where\nhttps://e.org/x.jpg,IPC6225,Slavija\ny.jpg,6625,\n")
    args = ["import", "sheet", str(tmp_path / "s.csv"), "--photos", str(tmp_path / "photos")]
    args += ["--out", str(tmp_path / "out"), "--photo-col", "file", "--model-col", "camera"]
    assert main([*args, "--location-col", "where"]) == 0
    out = capsys.readouterr().out
    assert "huawei_ipc6225_vrz_es" in out and "row 3" in out and "y.jpg" in out


def test_synth_is_forwarded(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("data.synth.cli")
    fake.main = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "data.synth.cli", fake)
    assert main(["synth", "--count", "3"]) == 0
    assert seen == [["--count", "3"]]


@pytest.mark.shared_data
def test_real_manifest_validates_and_splits_clean(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = shared_data / "real" / "manifest.csv"
    assert main(["validate", str(manifest)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")
    out_csv = tmp_path / "real_split.csv"  # never write into the shared folder
    assert main(["split", str(manifest), "--out", str(out_csv)]) == 0
    assert "leaks: 0" in capsys.readouterr().out
    assert main(["check-split", str(out_csv)]) == 0
    split = read_manifest(out_csv)
    assert len(split.records) == len(read_manifest(manifest).records)
    for label in ("other_camera", "no_camera"):
        assert {r.split for r in split.records if r.label == label} == {"train", "val", "test"}
    assert all(split.resolve(r).is_file() for r in split.records)


def test_merge_joins_sets_keeps_provenance_and_splits_without_leaks(tmp_path: Path) -> None:
    from data.cli import main
    from data.manifest import read_manifest
    from tests.conftest import make_photo

    for name, label in (("renders", "huawei_ipc6625_z30"), ("real", "no_camera")):
        for i in range(10):
            make_photo(tmp_path / name / label / f"{i}.jpg", seed=i + 100 * (name == "real"))
    out = tmp_path / "merged" / "manifest.csv"
    assert main(["merge", str(tmp_path / "renders"), str(tmp_path / "real"), "--out", str(out)]) == 0
    merged = read_manifest(out)
    assert len(merged.records) == 20
    assert {r.extra["dataset"] for r in merged.records} == {"0-renders", "1-real"}
    assert all(merged.resolve(r).is_file() for r in merged.records)
    assert {r.split for r in merged.records} == {"train", "val", "test"}
    assert main(["check-split", str(out)]) == 0


def test_merge_negatives_from_takes_only_the_photos_without_a_camera(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from data.cli import main
    from data.manifest import read_manifest
    from tests.conftest import make_photo

    for i in range(8):
        make_photo(tmp_path / "renders" / "huawei_ipc6625_z30" / f"{i}.jpg", seed=i)
        make_photo(tmp_path / "real" / ("other_camera" if i < 3 else "no_camera") / f"{i}.jpg", seed=100 + i)
    out = tmp_path / "merged.csv"
    argv = ["merge", str(tmp_path / "renders"), "--negatives-from", str(tmp_path / "real"), "--out", str(out)]
    assert main(argv) == 0
    merged = read_manifest(out)
    real = [r for r in merged.records if r.extra["dataset"] == "1-real"]
    assert len(merged.records) == 13 and len(real) == 5  # the 3 real camera photos stay out
    assert {r.label for r in real} == {"no_camera"}
    from data.merge import source_group  # the group each photo had in its own set, for evaluations

    originals = {r.group for r in read_manifest(tmp_path / "real").records}
    assert {source_group(r) for r in real} <= originals
    assert main(["check-split", str(out)]) == 0
    capsys.readouterr()
    # a manifest with no photo without a camera is named, not merged as nothing
    argv = [
        "merge",
        str(tmp_path / "renders"),
        "--negatives-from",
        str(tmp_path / "renders"),
        "--out",
        str(out),
    ]
    assert main(argv) == 2
    assert "renders: no photo labelled 'no_camera'" in capsys.readouterr().err
    assert read_manifest(out).records == merged.records  # the earlier merge is left as it was


def _boxed_set(root: Path, column: str, cells: list[str], label: str, seed: int) -> Path:
    lines = [f"path,label,group,source,license,lat,lon,{column}"]
    for i, cell in enumerate(cells):
        smooth_photo(root / "photos" / f"{i}.jpg", seed=seed + i)
        lines.append(f'photos/{i}.jpg,{label if cell else "no_camera"},g{i},test,CC0,,,"{cell}"')
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def test_merge_reads_legacy_bbox_into_boxes_and_split_keeps_them(tmp_path: Path) -> None:
    legacy = _boxed_set(
        tmp_path / "real", "bbox", ["4 4 20 20;24 24 40 40", "", "1 2 30 40", ""], "other_camera", 300
    )
    ptz = '[{""label"":""huawei_ipc6625_z30"",""box"":[5,6,30,31],""kind"":""huawei_ptz""}]'
    renders = _boxed_set(tmp_path / "renders", "boxes", [ptz, "", ptz, ""], "huawei_ipc6625_z30", 400)
    merged_csv = tmp_path / "merged" / "manifest.csv"
    assert main(["merge", str(legacy), str(renders), "--out", str(merged_csv)]) == 0
    merged = read_manifest(merged_csv)
    by_photo = {
        (r.extra["dataset"], Path(r.path).name): parse_boxes(r.extra["boxes"]) for r in merged.records
    }
    assert [(b.label, b.box) for b in by_photo[("0-real", "0.jpg")]] == [
        ("other_camera", (4, 4, 20, 20)),
        ("other_camera", (24, 24, 40, 40)),
    ]
    assert by_photo[("0-real", "1.jpg")] == [] and by_photo[("1-renders", "1.jpg")] == []
    assert [(b.label, b.kind) for b in by_photo[("1-renders", "2.jpg")]] == [
        ("huawei_ipc6625_z30", "huawei_ptz")
    ]
    assert main(["validate", str(merged_csv)]) == 0

    resplit = tmp_path / "resplit.csv"
    assert main(["split", str(merged_csv), "--out", str(resplit), "--seed", "5"]) == 0
    again = {merged.resolve(r): r.extra["boxes"] for r in merged.records}
    split = read_manifest(resplit)
    assert {split.resolve(r): r.extra["boxes"] for r in split.records} == again


def test_validate_names_the_row_and_column_of_bad_boxes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _boxed_set(
        tmp_path,
        "boxes",
        ['[{""label"":""other_camera"",""box"":[1,1,900,20]}]', "[oops"],
        "other_camera",
        500,
    )
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "row 1, column 'boxes'" in out and "outside the 48x48 image" in out
    assert "row 2, column 'boxes'" in out and "not JSON" in out


def test_merge_refuses_an_unreadable_bbox_naming_the_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _boxed_set(tmp_path / "real", "bbox", ["4 4 twenty 20"], "other_camera", 600)
    assert main(["merge", str(path), "--out", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "not numbers" in err and "camid data validate" in err


@pytest.mark.shared_data
def test_merging_the_real_set_reads_its_bbox_column_into_boxes(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "real" / "manifest.csv"
    merged_csv = tmp_path / "merged.csv"  # never write into the shared folder
    assert main(["merge", str(source), "--out", str(merged_csv)]) == 0
    real = read_manifest(source)
    merged = read_manifest(merged_csv)
    boxes = {merged.resolve(r): r.extra["boxes"] for r in merged.records}
    with_bbox = [r for r in real.records if r.extra.get("bbox")]
    assert with_bbox  # the real set has boxes: 262 photos
    for r in with_bbox:
        assert parse_boxes(boxes[real.resolve(r)]) == record_boxes(r)
    assert all(
        b.label == "other_camera" for r in with_bbox if r.label == "other_camera" for b in record_boxes(r)
    )
    assert main(["validate", str(merged_csv)]) == 0
