"""Import object-detection datasets (COCO JSON, YOLO txt, Pascal VOC XML) as whole images + crops.

Each image becomes one record labelled with its largest (mapped) camera box, or its largest box
when none is a camera, holding every mapped box in its ``boxes`` column (see ``data/boxes.py``;
``kind`` is the dataset's own class name). Each box also becomes a crop with a context margin
(default 25% of the box on each side, clamped to the image), written as JPEG under
``OUT/crops/``, whose ``boxes`` cell is that box in crop pixels. A crop shares its image's group,
so they never straddle splits. Box coordinates are in the upright image (after EXIF
orientation), as annotation tools show it; boxes are clipped to the image.
"""

from __future__ import annotations

import json
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from PIL import Image
from tqdm import tqdm

from data.boxes import LabeledBox, format_boxes
from data.images import ImageError, load_image
from data.importers.common import SKIP, ImportResult, check_labels, finish, resolve_labels
from data.labels import LabelSet
from data.manifest import IMAGE_SUFFIXES, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Box:
    """One annotated object; YOLO boxes are ``normalized`` (0..1) until the image size is known."""

    name: str
    x0: float
    y0: float
    x1: float
    y1: float
    normalized: bool = False

    def to_pixels(self, width: int, height: int) -> Box:
        if not self.normalized:
            return self
        return Box(self.name, self.x0 * width, self.y0 * height, self.x1 * width, self.y1 * height)

    def clipped(self, width: int, height: int) -> Box:
        """The part of the (pixel) box inside a ``width`` x ``height`` image."""
        x0, y0 = min(max(self.x0, 0.0), width), min(max(self.y0, 0.0), height)
        x1, y1 = min(max(self.x1, 0.0), width), min(max(self.y1, 0.0), height)
        return Box(self.name, x0, y0, x1, y1)

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


@dataclass
class AnnotatedImage:
    """A dataset image and its boxes."""

    path: Path
    group: str
    boxes: list[Box] = field(default_factory=list)


@dataclass(frozen=True)
class CropOptions:
    """How to turn boxes into records."""

    class_map: Mapping[str, str] = field(default_factory=dict)
    margin: float = 0.25
    whole: bool = True
    empty_label: str | None = None
    source: str = ""
    license: str = ""


def crop_box(box: Box, width: int, height: int, margin: float) -> tuple[int, int, int, int]:
    """The box grown by ``margin`` x its size on each side, clamped to the image."""
    mx, my = (box.x1 - box.x0) * margin, (box.y1 - box.y0) * margin
    x0, y0 = max(0, int(box.x0 - mx)), max(0, int(box.y0 - my))
    x1, y1 = min(width, round(box.x1 + mx + 0.4999)), min(height, round(box.y1 + my + 0.4999))
    return x0, y0, x1, y1


# --- readers -----------------------------------------------------------------------------------


def read_coco(json_path: Path, images_dir: Path | None = None) -> list[AnnotatedImage]:
    """Images and boxes of a COCO ``instances.json`` (``bbox`` is ``[x, y, width, height]``)."""
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    base = images_dir or json_path.parent
    names = {c["id"]: str(c["name"]) for c in doc.get("categories", [])}
    items = {
        im["id"]: AnnotatedImage(base / im["file_name"], f"{json_path.stem}:{im['file_name']}")
        for im in doc.get("images", [])
    }
    for ann in doc.get("annotations", []):
        x, y, w, h = (float(v) for v in ann["bbox"])
        name = names.get(ann["category_id"], str(ann["category_id"]))
        if ann["image_id"] in items:
            items[ann["image_id"]].boxes.append(Box(name, x, y, x + w, y + h))
    return list(items.values())


def _yolo_names(root: Path) -> list[str]:
    for candidate in (root / "data.yaml", root / "dataset.yaml"):
        if candidate.is_file():
            names = (yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}).get("names")
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names, key=int)]
            if isinstance(names, list):
                return [str(n) for n in names]
    for candidate in (root / "classes.txt", *sorted(root.rglob("classes.txt"))):
        if candidate.is_file():
            return [ln.strip() for ln in candidate.read_text(encoding="utf-8").splitlines() if ln.strip()]
    raise ValueError(f"{root}: no class names; add data.yaml (names: [...]) or classes.txt, one name a line")


def _yolo_label_file(image: Path) -> Path:
    parts = list(image.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
        return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def read_yolo(root: Path) -> list[AnnotatedImage]:
    """Images under ``root`` with ``labels/*.txt`` (``class cx cy w h``, normalised) beside ``images/``."""
    names = _yolo_names(root)
    items = []
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        item = AnnotatedImage(image, f"{root.name}:{image.relative_to(root).as_posix()}")
        label_file = _yolo_label_file(image)
        lines = label_file.read_text(encoding="utf-8").splitlines() if label_file.is_file() else []
        for n, line in enumerate(filter(None, (ln.split() for ln in lines)), start=1):
            try:
                cls, cx, cy, w, h = int(line[0]), *(float(v) for v in line[1:5])
                name = names[cls]
            except (ValueError, IndexError) as exc:
                raise ValueError(
                    f"{label_file}:{n}: not 'class cx cy w h' with a known class ({exc})"
                ) from exc
            item.boxes.append(Box(name, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, normalized=True))
        items.append(item)
    return items


def _voc_image(xml_path: Path, filename: str, images_dir: Path | None) -> Path:
    candidates = [xml_path.parent / filename, xml_path.parent.parent / "JPEGImages" / filename]
    if images_dir:
        candidates.insert(0, images_dir / filename)
    candidates += [xml_path.with_suffix(s) for s in IMAGE_SUFFIXES]
    return next((c for c in candidates if c.is_file()), candidates[0])


def read_voc(root: Path, images_dir: Path | None = None) -> list[AnnotatedImage]:
    """Images and boxes of Pascal VOC ``*.xml`` files anywhere under ``root``."""
    items = []
    for xml_path in sorted(root.rglob("*.xml")):
        doc = ET.parse(xml_path).getroot()
        filename = (doc.findtext("filename") or xml_path.with_suffix(".jpg").name).strip()
        image = _voc_image(xml_path, filename, images_dir)
        where = image.relative_to(root).as_posix() if image.is_relative_to(root) else filename
        item = AnnotatedImage(image, f"{root.name}:{where}")
        for obj in doc.iter("object"):
            bb = obj.find("bndbox")
            if bb is None:
                continue
            try:
                x0, y0, x1, y1 = (float(bb.findtext(k) or "") for k in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError as exc:
                raise ValueError(f"{xml_path}: xmin ymin xmax ymax must be numbers ({exc})") from exc
            item.boxes.append(Box((obj.findtext("name") or "").strip(), x0, y0, x1, y1))
        items.append(item)
    return items


# --- turning boxes into records ------------------------------------------------------------------


def _label_of(name: str, class_map: Mapping[str, str], labels: LabelSet) -> str | None:
    """The camid label of a dataset class, None for 'skip'; KeyError when unmapped."""
    label = class_map.get(name, name if name in labels else None)
    if label is None:
        raise KeyError(name)
    return None if label in SKIP else label


def _check_mapped(items: Sequence[AnnotatedImage], options: CropOptions, labels: LabelSet) -> None:
    names = sorted({b.name for item in items for b in item.boxes})
    unmapped = [n for n in names if n not in options.class_map and n not in labels]
    if unmapped:
        raise ValueError(
            f"dataset class(es) {', '.join(map(repr, unmapped))} have no camid label; pass "
            f"--class-map NAME=LABEL (labels: {', '.join(labels.names)}; or NAME=skip)"
        )


def _safe_stem(group: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", group.rsplit(".", 1)[0])[-120:]


def _labeled(box: Box, label: str, dx: float = 0.0, dy: float = 0.0) -> LabeledBox:
    """A box as manifest data, shifted by ``(-dx, -dy)`` (into a crop's pixels)."""
    return LabeledBox(label, (box.x0 - dx, box.y0 - dy, box.x1 - dx, box.y1 - dy), box.name)


def _photo_label(mapped: Sequence[tuple[Box, str]], labels: LabelSet, empty: str | None) -> str:
    """The whole image's label: its largest camera box, else its largest box, else ``empty``."""
    cameras = [bl for bl in mapped if bl[1] in labels.cameras] or list(mapped)
    largest = max(cameras, key=lambda bl: bl[0].area, default=None)
    return largest[1] if largest else str(empty)


def _records_for(
    item: AnnotatedImage, img: Image.Image, out: Path, options: CropOptions, labels: LabelSet
) -> list[Record]:
    w, h = img.size
    boxes = [
        (b.to_pixels(w, h).clipped(w, h), _label_of(b.name, options.class_map, labels)) for b in item.boxes
    ]
    mapped = [(b, lab) for b, lab in boxes if lab is not None and b.area > 0]
    base = (item.group, options.source, options.license)
    records = []
    if options.whole and (mapped or options.empty_label):
        label = _photo_label(mapped, labels, options.empty_label)
        extra = {"boxes": format_boxes(_labeled(b, lab) for b, lab in mapped), "crop_of": ""}
        records.append(Record(str(item.path.resolve()), label, *base, extra=extra))
    for k, (box, label) in enumerate(mapped):
        x0, y0, x1, y1 = crop_box(box, w, h, options.margin)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        crop_path = out / "crops" / f"{_safe_stem(item.group)}_{k}.jpg"
        img.crop((x0, y0, x1, y1)).save(crop_path, "JPEG", quality=95)
        extra = {
            "boxes": format_boxes([_labeled(box, label, x0, y0)]),
            "crop_of": Path(os.path.relpath(item.path.resolve(), out.resolve())).as_posix(),
        }
        records.append(Record(str(crop_path.resolve()), label, *base, extra=extra))
    return records


def import_detections(
    items: Sequence[AnnotatedImage],
    out: str | Path,
    options: CropOptions,
    *,
    labels: LabelSet | None = None,
    progress: bool = True,
) -> ImportResult:
    """Write whole-image and crop records for annotated images; unreadable images are reported."""
    labels = resolve_labels(labels)
    check_labels(options.class_map, labels)
    if options.empty_label is not None:
        labels.index(options.empty_label)
    _check_mapped(items, options, labels)
    (Path(out) / "crops").mkdir(parents=True, exist_ok=True)
    records: list[Record] = []
    problems: list[str] = []
    for item in tqdm(items, desc="import", unit="image", disable=not progress, leave=False):
        try:
            img = load_image(item.path)
        except (ImageError, OSError) as exc:
            problems.append(f"{item.path}: {exc}")
            continue
        new = _records_for(item, img, Path(out), options, labels)
        if not new:
            problems.append(f"{item.path}: no boxes of a mapped class (use --empty-label to keep it)")
        records += new
    return finish(out, records, problems)


def import_coco(
    json_path: str | Path,
    out: str | Path,
    options: CropOptions,
    *,
    images_dir: str | Path | None = None,
    labels: LabelSet | None = None,
    progress: bool = True,
) -> ImportResult:
    """Import a COCO JSON file (images resolved against ``images_dir``, default: the JSON's folder)."""
    items = read_coco(Path(json_path), Path(images_dir) if images_dir else None)
    return import_detections(items, out, options, labels=labels, progress=progress)


def import_yolo(
    root: str | Path,
    out: str | Path,
    options: CropOptions,
    *,
    labels: LabelSet | None = None,
    progress: bool = True,
) -> ImportResult:
    """Import a YOLO dataset folder (``images/``, ``labels/``, ``data.yaml`` or ``classes.txt``)."""
    return import_detections(read_yolo(Path(root)), out, options, labels=labels, progress=progress)


def import_voc(
    root: str | Path,
    out: str | Path,
    options: CropOptions,
    *,
    images_dir: str | Path | None = None,
    labels: LabelSet | None = None,
    progress: bool = True,
) -> ImportResult:
    """Import Pascal VOC XML annotations found under ``root``."""
    items = read_voc(Path(root), Path(images_dir) if images_dir else None)
    return import_detections(items, out, options, labels=labels, progress=progress)
