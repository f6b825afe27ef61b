"""Camera boxes as data: one labelled box per camera or look-alike in a photo (torch-free).

A manifest stores a photo's boxes in its ``boxes`` column as JSON,
``[{"label": "huawei_ipc6625_z30", "box": [x0, y0, x1, y1], "kind": "huawei_ptz"}, ...]``, in
pixels of the upright image (after EXIF orientation). ``label`` is a class of the label set;
a look-alike (a street light, a handheld camera) carries the no-camera class so that detectors
can learn it as a hard negative. The older ``bbox`` column (``"x0 y0 x1 y1"``, several boxes
separated by ``;``, all of the record's own label) is read too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from data.labels import LabelSet
from data.manifest import Record

BOXES_COLUMN = "boxes"
LEGACY_COLUMN = "bbox"
# box width as a fraction of the photo width: where a camera detector succeeds or fails
SIZE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("<2%", 0.0, 0.02),
    ("2-5%", 0.02, 0.05),
    ("5-15%", 0.05, 0.15),
    (">15%", 0.15, math.inf),
)
# how far a box may reach past the image edge before it is a problem: VOC-style exports count
# pixels from 1, so their boxes end at width + 1 (e.g. Roboflow's "1 1 417 417" in 416 x 416)
EDGE_SLACK_PX = 1.0


class BoxError(ValueError):
    """A ``boxes``/``bbox`` cell that cannot be read."""


@dataclass(frozen=True)
class LabeledBox:
    """One object in a photo: its class and its box ``(x0, y0, x1, y1)`` in pixels."""

    label: str
    box: tuple[float, float, float, float]
    kind: str = ""

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        if not all(math.isfinite(v) for v in self.box) or x1 <= x0 or y1 <= y0:
            raise BoxError(f"box {list(self.box)} of {self.label!r}: need finite x0 < x1 and y0 < y1")

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def scaled(self, sx: float, sy: float) -> LabeledBox:
        """The same box in an image resized by ``(sx, sy)``."""
        x0, y0, x1, y1 = self.box
        return LabeledBox(self.label, (x0 * sx, y0 * sy, x1 * sx, y1 * sy), self.kind)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"label": self.label, "box": [round(v, 1) for v in self.box]}
        if self.kind:
            out["kind"] = self.kind
        return out


def parse_boxes(text: str, where: str = "boxes") -> list[LabeledBox]:
    """The boxes of one ``boxes`` cell (empty cell: no boxes)."""
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BoxError(f"{where}: not JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(doc, list):
        raise BoxError(f"{where}: expected a JSON list of boxes, got {type(doc).__name__}")
    out = []
    for i, item in enumerate(doc):
        box = item.get("box") if isinstance(item, dict) else None
        if not isinstance(box, list) or len(box) != 4 or not isinstance(item.get("label"), str):
            raise BoxError(f"{where}[{i}]: expected {{'label': str, 'box': [x0, y0, x1, y1]}}")
        try:
            coords = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        except (TypeError, ValueError):
            raise BoxError(f"{where}[{i}]: box coordinates must be numbers, got {box}") from None
        out.append(LabeledBox(item["label"], coords, str(item.get("kind", ""))))
    return out


def format_boxes(boxes: Iterable[LabeledBox]) -> str:
    """The ``boxes`` cell for these boxes ("" for none)."""
    items = [b.to_json() for b in boxes]
    return json.dumps(items, separators=(",", ":")) if items else ""


def parse_legacy_boxes(text: str, label: str, kind: str = "", where: str = LEGACY_COLUMN) -> list[LabeledBox]:
    """The boxes of a legacy ``bbox`` cell (``"x0 y0 x1 y1"``, several joined by ``;``), all ``label``."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        values = part.split()
        if len(values) != 4:
            raise BoxError(f"{where} {part!r}: expected 'x0 y0 x1 y1' (several separated by ';')")
        try:
            coords = (float(values[0]), float(values[1]), float(values[2]), float(values[3]))
        except ValueError:
            raise BoxError(f"{where} {part!r}: not numbers") from None
        out.append(LabeledBox(label, coords, kind))
    return out


def cell_boxes(cells: Mapping[str, str], label: str, where: str = "") -> list[LabeledBox]:
    """The boxes of a manifest row's cells: ``boxes``, else the legacy ``bbox`` (label ``label``)."""
    prefix = f"{where}: " if where else ""
    text = cells.get(BOXES_COLUMN) or ""
    if text.strip():
        return parse_boxes(text, f"{prefix}{BOXES_COLUMN}")
    legacy = cells.get(LEGACY_COLUMN) or ""
    return parse_legacy_boxes(legacy, label, cells.get("form_factor") or "", f"{prefix}{LEGACY_COLUMN}")


def record_boxes(record: Record) -> list[LabeledBox]:
    """A manifest row's boxes: its ``boxes`` column, else its legacy ``bbox`` column."""
    return cell_boxes(record.extra, record.label, record.path)


def box_problems(
    boxes: Sequence[LabeledBox], label: str, width: int, height: int, labels: LabelSet
) -> list[str]:
    """What is wrong with a photo's boxes: unknown labels, boxes outside the ``width`` x ``height``
    image (beyond :data:`EDGE_SLACK_PX`), camera boxes in a photo labelled as having no camera."""
    out = []
    for i, b in enumerate(boxes):
        if b.label not in labels:
            out.append(f"box {i}: unknown label {b.label!r}; known: {', '.join(labels.names)}")
        x0, y0, x1, y1 = b.box
        s = EDGE_SLACK_PX
        if x0 < -s or y0 < -s or x1 > width + s or y1 > height + s:
            out.append(f"box {i} {list(b.box)} ({b.label}) lies outside the {width}x{height} image")
    cameras = set(labels.cameras)
    if label in labels and label not in cameras and any(b.label in cameras for b in boxes):
        out.append(f"the photo is labelled {label!r} but holds a camera box; fix the label or the box")
    return out


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def size_bucket(box_width: float, image_width: float) -> str:
    """The size bucket (``<2%``, ``2-5%``, ``5-15%``, ``>15%``) of a box in a photo."""
    frac = box_width / max(image_width, 1e-9)
    for name, lo, hi in SIZE_BUCKETS:
        if lo <= frac < hi:
            return name
    return SIZE_BUCKETS[-1][0]
