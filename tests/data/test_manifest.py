from pathlib import Path

import pytest

from data.labels import load_labels
from data.manifest import ManifestError, Record, read_manifest, validate_manifest, write_manifest
from tests.conftest import make_photo

HEADER = "path,label,group,source,license,lat,lon\n"


def _write(tmp_path: Path, rows: str) -> Path:
    csv_path = tmp_path / "manifest.csv"
    csv_path.write_text(HEADER + rows)
    return csv_path


def test_round_trip_keeps_split_extras_and_relative_paths(tmp_path: Path) -> None:
    make_photo(tmp_path / "photos" / "a.jpg")
    src = tmp_path / "manifest.csv"
    src.write_text(HEADER[:-1] + ",form_factor\nphotos/a.jpg,other_camera,g1,undo,GPL-3.0,44.8,20.46,box\n")
    manifest = read_manifest(src)
    rec = manifest.records[0]
    assert (rec.lat, rec.lon, rec.extra) == (44.8, 20.46, {"form_factor": "box"})
    assert manifest.resolve(rec) == (tmp_path / "photos" / "a.jpg").resolve()

    split = manifest.with_records([Record(**{**rec.__dict__, "split": "test"})])
    out = write_manifest(split, tmp_path / "elsewhere" / "m.csv")
    again = read_manifest(out)
    assert again.records[0].path == "../photos/a.jpg"
    assert again.records[0].split == "test" and again.records[0].extra == {"form_factor": "box"}
    assert again.resolve(again.records[0]) == manifest.resolve(rec)


def test_validation_reports_every_problem_with_row_and_column(tmp_path: Path) -> None:
    make_photo(tmp_path / "ok.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    csv_path = _write(
        tmp_path,
        "ok.jpg,other_camera,g1,,,,\n"  # row 1: fine
        "ok.jpg,other_camera,g1,,,,\n"  # row 2: duplicate path
        "missing.jpg,no_camera,g2,,,,\n"  # row 3: file not found
        "ok.jpg,hikvision,g3,,,,\n"  # row 4: unknown label (and duplicate)
        "broken.jpg,no_camera,,,,,\n"  # row 5: unreadable + empty group
        "ok.jpg,no_camera,g4,,,95,20\n"  # row 6: lat out of range (and duplicate)
        "ok.jpg,no_camera,g4,,,abc,\n",  # row 7: lat not a number, lon missing
    )
    problems = validate_manifest(csv_path, load_labels())
    found = {(p.row, p.column) for p in problems}
    assert (1, "path") not in found and not any(p.row == 1 for p in problems)
    assert {
        (2, "path"),
        (3, "path"),
        (4, "label"),
        (5, "path"),
        (5, "group"),
        (6, "lat"),
        (7, "lat"),
    } <= found
    messages = " | ".join(str(p) for p in problems)
    for words in (
        "duplicate path",
        "file not found",
        "unknown label 'hikvision'",
        "unreadable image",
        "empty group",
        "outside",
        "not a number",
        "together",
    ):
        assert words in messages


def test_validation_reports_unreadable_boxes_and_boxes_outside_the_image(tmp_path: Path) -> None:
    make_photo(tmp_path / "a.jpg")  # 96 x 72
    rows = [
        ("other_camera", '[{""label"":""other_camera"",""box"":[10,10,40,40]}]', ""),  # 1: fine
        ("other_camera", "", "10 10 40 40;50 20 96.5 72"),  # 2: legacy, two boxes, fine
        ("other_camera", '[{""label"":""other_camera"",""box"":[10,10', ""),  # 3: not JSON
        ("other_camera", '[{""label"":""other_camera"",""box"":[60,10,130,40]}]', ""),  # 4: outside
        ("other_camera", "", "10 10 40"),  # 5: legacy, 3 numbers
        ("other_camera", '[{""label"":""dashcam"",""box"":[1,1,5,5]}]', ""),  # 6: unknown label
        ("no_camera", '[{""label"":""other_camera"",""box"":[1,1,5,5]}]', ""),  # 7: camera in no_camera
        ("no_camera", '[{""label"":""no_camera"",""box"":[1,1,5,5],""kind"":""street_light""}]', ""),  # 8
    ]
    csv_path = tmp_path / "manifest.csv"
    csv_path.write_text(
        HEADER[:-1]
        + ",boxes,bbox\n"
        + "".join(f'a.jpg,{label},g{i},,,,,"{boxes}",{bbox}\n' for i, (label, boxes, bbox) in enumerate(rows))
    )
    problems = [p for p in validate_manifest(csv_path, load_labels()) if p.column != "path"]  # same photo
    assert [(p.row, p.column) for p in problems] == [
        (3, "boxes"),
        (4, "boxes"),
        (5, "bbox"),
        (6, "boxes"),
        (7, "boxes"),
    ]
    assert "not JSON" in problems[0].message
    assert "outside the 96x72 image" in problems[1].message
    assert "expected 'x0 y0 x1 y1'" in problems[2].message
    assert "unknown label 'dashcam'" in problems[3].message
    assert "labelled 'no_camera' but holds a camera box" in problems[4].message


def test_folder_of_label_subfolders_is_a_manifest(tmp_path: Path) -> None:
    make_photo(tmp_path / "other_camera" / "a.jpg")
    make_photo(tmp_path / "no_camera" / "b.png", fmt="PNG")
    manifest = read_manifest(tmp_path)
    assert sorted((r.label, r.path) for r in manifest.records) == [
        ("no_camera", "no_camera/b.png"),
        ("other_camera", "other_camera/a.jpg"),
    ]
    assert validate_manifest(tmp_path, load_labels()) == []


def test_unreadable_manifests_say_why(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("file,class\nx.jpg,a\n")
    with pytest.raises(ManifestError, match="lacks column"):
        read_manifest(tmp_path / "bad.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match="no LABEL"):
        read_manifest(empty)


def test_write_is_atomic_and_leaves_the_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_photo(tmp_path / "a.jpg")
    target = _write(tmp_path, "a.jpg,no_camera,g,,,44.0,20.0\n")
    before = target.read_text()
    manifest = read_manifest(target)

    def disk_full(value: float | None) -> str:
        raise OSError("No space left on device")

    monkeypatch.setattr("data.manifest._format_coord", disk_full)
    with pytest.raises(OSError):
        write_manifest(manifest, target)
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".manifest-")] == []
