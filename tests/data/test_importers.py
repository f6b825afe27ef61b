"""Tests for data.importers: folder, COCO, YOLO, VOC and the verification sheet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from data.boxes import LabeledBox, parse_boxes, record_boxes
from data.importers import import_coco, import_folder, import_sheet, import_voc, import_yolo, parse_class_map
from data.importers.detection import Box, CropOptions, crop_box
from data.importers.sheet import SheetColumns, SheetOptions, label_for_model, photo_name
from data.manifest import read_manifest
from tests.data.conftest import smooth_photo


def photo(path: Path, size: tuple[int, int] = (80, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (40, 90, 160)).save(path, "JPEG")
    return path


# --- folder ---------------------------------------------------------------------------------------


def test_folder_import_writes_a_manifest_and_reports_bad_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    photo(src / "no_camera" / "a.jpg")
    photo(src / "no_camera" / "sub" / "b.png")
    photo(src / "other_camera" / "c.jpg")
    (src / "other_camera" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (src / "other_camera" / "readme.txt").write_text("not a photo")

    result = import_folder(src, tmp_path / "out", license="CC0", progress=False)

    assert result.counts() == {"no_camera": 2, "other_camera": 1}
    assert len(result.problems) == 1 and "broken.jpg" in result.problems[0]
    manifest = read_manifest(tmp_path / "out" / "manifest.csv")
    assert sorted(r.path for r in manifest.records) == [
        "../src/no_camera/a.jpg",
        "../src/no_camera/sub/b.png",
        "../src/other_camera/c.jpg",
    ]
    assert all(manifest.resolve(r).is_file() and r.license == "CC0" for r in manifest.records)
    assert len({r.group for r in manifest.records}) == 3
    assert "broken.jpg" in result.summary()


def test_folder_import_refuses_unknown_folder_names(tmp_path: Path) -> None:
    photo(tmp_path / "src" / "no_camera" / "a.jpg")
    photo(tmp_path / "src" / "cameras" / "b.jpg")
    with pytest.raises(ValueError, match="'?cameras'? .*not camid labels.*huawei_ipc6625_z30"):
        import_folder(tmp_path / "src", tmp_path / "out", progress=False)


# --- detection datasets ---------------------------------------------------------------------------


def test_crop_box_adds_margin_and_clamps() -> None:
    assert crop_box(Box("c", 20, 20, 40, 60), 100, 100, 0.25) == (15, 10, 45, 70)
    assert crop_box(Box("c", 0, 0, 40, 40), 50, 45, 0.25) == (0, 0, 50, 45)


def test_class_map_parsing() -> None:
    assert parse_class_map(["camera=other_camera", "cctv=other_camera,person=skip"]) == {
        "camera": "other_camera",
        "cctv": "other_camera",
        "person": "skip",
    }
    with pytest.raises(ValueError, match="NAME=LABEL"):
        parse_class_map("camera")


def check_detection_import(out: Path, n_images: int, n_boxes: int) -> None:
    manifest = read_manifest(out / "manifest.csv")
    whole = [r for r in manifest.records if not r.extra["crop_of"]]
    crops = [r for r in manifest.records if r.extra["crop_of"]]
    assert (len(whole), len(crops)) == (n_images, n_boxes)
    groups = {r.group for r in whole}
    for crop in crops:
        assert crop.group in groups  # each crop shares its image's group
        assert manifest.resolve(crop).is_file() and manifest.resolve(crop).parent.name == "crops"
        parent = (out / crop.extra["crop_of"]).resolve()
        assert parent in {manifest.resolve(w) for w in whole if w.group == crop.group}


def test_coco_import(tmp_path: Path) -> None:
    photo(tmp_path / "coco" / "img" / "street.jpg", (100, 80))
    photo(tmp_path / "coco" / "img" / "pole.jpg", (100, 80))
    photo(tmp_path / "coco" / "img" / "empty.jpg", (100, 80))
    doc = {
        "images": [
            {"id": 1, "file_name": "img/street.jpg", "width": 100, "height": 80},
            {"id": 2, "file_name": "img/pole.jpg", "width": 100, "height": 80},
            {"id": 3, "file_name": "img/empty.jpg", "width": 100, "height": 80},
        ],
        "categories": [{"id": 1, "name": "camera"}, {"id": 2, "name": "person"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
            {"image_id": 1, "category_id": 1, "bbox": [70, 20, 30, 40]},
            {"image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5]},
            {"image_id": 2, "category_id": 1, "bbox": [40, 30, 20, 20]},
            {"image_id": 2, "category_id": 1, "bbox": [90, 70, 30, 30]},  # runs off the image
        ],
    }
    (tmp_path / "coco" / "instances.json").write_text(json.dumps(doc))
    options = CropOptions(class_map=parse_class_map("camera=other_camera,person=skip"))

    result = import_coco(tmp_path / "coco" / "instances.json", tmp_path / "out", options, progress=False)

    check_detection_import(tmp_path / "out", n_images=2, n_boxes=4)
    assert any("empty.jpg" in p and "--empty-label" in p for p in result.problems)
    manifest = read_manifest(tmp_path / "out" / "manifest.csv")
    street = next(r for r in manifest.records if r.path.endswith("street.jpg"))
    # every mapped box of the photo, the skipped class left out
    assert record_boxes(street) == [
        LabeledBox("other_camera", (10, 10, 30, 30), "camera"),
        LabeledBox("other_camera", (70, 20, 100, 60), "camera"),
    ]
    pole = next(r for r in manifest.records if r.path.endswith("pole.jpg"))
    assert [b.box for b in record_boxes(pole)] == [(40, 30, 60, 50), (90, 70, 100, 80)]  # clipped
    crop_record = next(r for r in manifest.records if r.path.endswith("street_1.jpg"))
    crop = Image.open(manifest.resolve(crop_record))
    assert crop.size == (38, 60)  # 30x40 box + 25% each side, clamped at the right edge (100 px)
    # the crop's own box in crop pixels: the crop starts at (62, 10) of the photo
    assert record_boxes(crop_record) == [LabeledBox("other_camera", (8, 10, 38, 50), "camera")]


def test_detection_import_names_unmapped_classes(tmp_path: Path) -> None:
    photo(tmp_path / "img.jpg")
    doc = {
        "images": [{"id": 1, "file_name": "img.jpg"}],
        "categories": [{"id": 1, "name": "cctv"}],
        "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]}],
    }
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="'cctv'.*--class-map"):
        import_coco(tmp_path / "a.json", tmp_path / "out", CropOptions(), progress=False)
    with pytest.raises(ValueError, match="unknown label.*cameraz"):
        import_coco(tmp_path / "a.json", tmp_path / "out", CropOptions({"cctv": "cameraz"}), progress=False)


def test_yolo_import_with_data_yaml(tmp_path: Path) -> None:
    root = tmp_path / "yolo"
    photo(root / "train" / "images" / "a.jpg", (100, 100))
    photo(root / "train" / "images" / "b.jpg", (100, 100))
    (root / "train" / "labels").mkdir(parents=True)
    # a camera and a larger handheld camera (a look-alike, mapped to no_camera)
    (root / "train" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.2 0.2 0.3 0.3\n")
    (root / "data.yaml").write_text("names: ['surveillance', 'handheld']\n")
    options = CropOptions(
        class_map={"surveillance": "other_camera", "handheld": "no_camera"}, empty_label="no_camera"
    )

    result = import_yolo(root, tmp_path / "out", options, progress=False)

    check_detection_import(tmp_path / "out", n_images=2, n_boxes=2)
    assert result.counts() == {
        "other_camera": 2,
        "no_camera": 2,
    }  # a.jpg (largest box), 1 crop, b.jpg, 1 crop
    manifest = read_manifest(tmp_path / "out" / "manifest.csv")
    a = next(r for r in manifest.records if r.path.endswith("a.jpg"))
    assert a.label == "other_camera"  # the camera decides the photo's label, not the larger look-alike
    assert [(b.label, b.box) for b in parse_boxes(a.extra["boxes"])] == [
        ("other_camera", (40, 30, 60, 70)),
        ("no_camera", (5, 5, 35, 35)),
    ]
    b = next(r for r in manifest.records if r.path.endswith("b.jpg"))
    assert (b.label, b.extra["boxes"]) == ("no_camera", "")  # --empty-label: kept without boxes


def test_yolo_import_with_classes_txt(tmp_path: Path) -> None:
    photo(tmp_path / "ds" / "x.jpg", (64, 64))
    (tmp_path / "ds" / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "ds" / "classes.txt").write_text("other_camera\n")
    result = import_yolo(tmp_path / "ds", tmp_path / "out", CropOptions(), progress=False)
    assert result.counts() == {"other_camera": 2}


def test_voc_import(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    photo(root / "JPEGImages" / "p1.jpg", (120, 90))
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "p1.xml").write_text(
        "<annotation><filename>p1.jpg</filename><size><width>120</width><height>90</height></size>"
        "<object><name>camera</name><bndbox><xmin>30</xmin><ymin>20</ymin><xmax>70</xmax><ymax>60</ymax>"
        "</bndbox></object></annotation>"
    )
    result = import_voc(
        root, tmp_path / "out", CropOptions(class_map={"camera": "other_camera"}), progress=False
    )
    check_detection_import(tmp_path / "out", n_images=1, n_boxes=1)
    assert result.counts() == {"other_camera": 2}


# --- the verification sheet -----------------------------------------------------------------------


def test_model_text_to_label() -> None:
    assert label_for_model("Huawei IPC6625-Z30", {}) == "huawei_ipc6625_z30"
    assert label_for_model("ipc6225-vrz-es (bullet)", {}) == "huawei_ipc6225_vrz_es"
    assert label_for_model("Dahua PTZ", {}) == "other_camera"
    assert label_for_model("  ", {}) is None
    assert label_for_model("Dahua PTZ", {"dahua": "no_camera"}) == "no_camera"


def test_photo_name_from_urls_and_paths() -> None:
    assert photo_name("https://example.org/uploads/2024/IMG%200042.jpg?size=large") == "IMG 0042.jpg"
    assert photo_name("photos\\sub\\IMG_1.HEIC") == "IMG_1.HEIC"


def test_sheet_import(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(5):
        smooth_photo(photos / f"IMG_{i}.jpg", seed=i)
    sheet = tmp_path / "verified.csv"
    sheet.write_text(
        "Fotografija;Model kamere;Lat;Lon;Datum;Lokacija\n"
        "https://hiljade.example/p/IMG_0.jpg;Huawei IPC6625-Z30;44,81250;20,46120;2021-03-01;Trg Republike\n"
        "IMG_1.jpg;IPC6225-VRZ-ES;44.81260;20.46120;2021-03-01;\n"  # 11 m from row 2: same group
        "IMG_2.jpg;Dahua dome;;;2021-03-02;Slavija\n"
        "IMG_3.jpg;huawei 6625;;;2021-03-02;  slavija \n"  # same place as row 4
        "IMG_missing.jpg;Huawei IPC6625-Z30;44.8;20.4;;\n"
        "IMG_4.jpg;;44.8;20.4;;\n"
    )
    columns = SheetColumns("Fotografija", "Model kamere", "Lat", "Lon", "Datum", "Lokacija")
    result = import_sheet(sheet, photos, tmp_path / "out", SheetOptions(columns, license="CC BY 4.0"))

    assert result.counts() == {"huawei_ipc6625_z30": 2, "huawei_ipc6225_vrz_es": 1, "other_camera": 1}
    assert len(result.problems) == 2
    assert "row 6" in result.problems[0] and "IMG_missing.jpg" in result.problems[0]
    assert "row 7" in result.problems[1] and "model" in result.problems[1]
    records = {Path(r.path).name: r for r in read_manifest(tmp_path / "out" / "manifest.csv").records}
    assert (
        records["IMG_0.jpg"].lat == pytest.approx(44.8125)
        and records["IMG_0.jpg"].extra["date"] == "2021-03-01"
    )
    assert records["IMG_0.jpg"].group == records["IMG_1.jpg"].group
    assert records["IMG_2.jpg"].group == records["IMG_3.jpg"].group != records["IMG_0.jpg"].group
    assert records["IMG_1.jpg"].license == "CC BY 4.0"


def test_sheet_import_names_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "s.csv").write_text("file,model\nIMG_1.jpg,6625\n")
    with pytest.raises(ValueError, match="--photo-col 'photo'.*columns are: file, model"):
        import_sheet(tmp_path / "s.csv", tmp_path / "photos", tmp_path / "out")
