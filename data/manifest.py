"""The training manifest: a CSV of ``path,label,group,source,license,lat,lon`` (+ ``split``, extras).

``path`` is relative to the manifest's folder. A folder of ``LABEL/*.jpg`` is accepted as a
manifest too. Unknown extra columns (``form_factor``, ``bbox``, ``notes`` …) are kept on rewrite.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from data.files import atomic_write
from data.labels import LabelSet

COLUMNS = ("path", "label", "group", "source", "license", "lat", "lon")
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True)
class Record:
    """One photo in a manifest."""

    path: str
    label: str
    group: str
    source: str = ""
    license: str = ""
    lat: float | None = None
    lon: float | None = None
    split: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Manifest:
    """Records plus the folder their relative paths start from."""

    root: Path
    records: list[Record]

    def resolve(self, record: Record) -> Path:
        """Absolute path of a record's photo."""
        return (self.root / record.path).resolve()

    def with_records(self, records: Iterable[Record]) -> Manifest:
        return Manifest(self.root, list(records))

    def in_split(self, split: str) -> Manifest:
        """Only the records of one split (``train``, ``val`` or ``test``)."""
        return self.with_records(r for r in self.records if r.split == split)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest row (row 1 is the first data row after the header)."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.message}"


class ManifestError(ValueError):
    """A manifest that cannot be read at all (missing file, missing columns)."""


def _parse_coord(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def _record_from_row(row: dict[str, str]) -> Record:
    known = set(COLUMNS) | {"split"}
    return Record(
        path=row["path"].strip(),
        label=row["label"].strip(),
        group=(row.get("group") or "").strip(),
        source=(row.get("source") or "").strip(),
        license=(row.get("license") or "").strip(),
        lat=_parse_coord(row.get("lat") or ""),
        lon=_parse_coord(row.get("lon") or ""),
        split=(row.get("split") or "").strip() or None,
        extra={k: v for k, v in row.items() if k not in known and k is not None},
    )


def _read_rows(csv_path: Path) -> list[dict[str, str]]:
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: no such manifest file")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("path", "label") if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(
                f"{csv_path}: header lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}"
            )
        return [dict(r) for r in reader]


def _read_folder(folder: Path) -> Manifest:
    records = []
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for photo in sorted(label_dir.rglob("*")):
            if photo.is_file() and photo.suffix.lower() in IMAGE_SUFFIXES:
                rel = photo.relative_to(folder).as_posix()
                records.append(Record(path=rel, label=label_dir.name, group=rel, source=str(folder)))
    if not records:
        raise ManifestError(f"{folder}: no LABEL/*.jpg photos found in this folder")
    return Manifest(folder.resolve(), records)


def read_manifest(path: str | Path) -> Manifest:
    """Read a manifest CSV, or a folder of ``LABEL/*.jpg`` (each photo its own group).

    Rows whose lat/lon are not numbers raise ManifestError; use :func:`validate_manifest` to
    get every problem of a file at once.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    rows = _read_rows(path)
    try:
        records = [_record_from_row(r) for r in rows]
    except ValueError as e:
        raise ManifestError(f"{path}: {e}; run `camid data validate {path}` for details") from e
    return Manifest(path.parent.resolve(), records)


def _format_coord(value: float | None) -> str:
    return "" if value is None else repr(round(value, 7))


def _relative_to(photo: Path, folder: Path) -> str:
    return Path(os.path.relpath(photo, folder)).as_posix()


def write_manifest(manifest: Manifest, csv_path: str | Path) -> Path:
    """Write atomically (temp file + rename); paths become relative to the CSV's folder."""
    csv_path = Path(csv_path).resolve()
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    extras: list[str] = []
    for r in manifest.records:
        extras += [k for k in r.extra if k not in extras]
    has_split = any(r.split for r in manifest.records)
    header = [*COLUMNS, *(["split"] if has_split else []), *extras]

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for r in manifest.records:
                rel = _relative_to(manifest.resolve(r), csv_path.parent)
                row = [rel, r.label, r.group, r.source, r.license, _format_coord(r.lat), _format_coord(r.lon)]
                row += [r.split or ""] if has_split else []
                row += [r.extra.get(k, "") for k in extras]
                writer.writerow(row)

    atomic_write(csv_path, write)
    return csv_path


def manifest_hash(manifest: Manifest) -> str:
    """A short hash of the manifest's content (path, label, group, split) for provenance."""
    h = hashlib.sha256()
    for r in sorted(manifest.records, key=lambda r: r.path):
        h.update(f"{r.path}\t{r.label}\t{r.group}\t{r.split or ''}\n".encode())
    return h.hexdigest()[:16]


def _check_coord(row: dict[str, str], column: str, limit: float, n: int) -> list[Problem]:
    text = (row.get(column) or "").strip()
    if not text:
        return []
    try:
        value = float(text)
    except ValueError:
        return [Problem(n, column, f"{text!r} is not a number")]
    if not math.isfinite(value) or abs(value) > limit:
        return [Problem(n, column, f"{value} is outside -{limit}..{limit}")]
    return []


def _check_row(
    row: dict[str, str], n: int, root: Path, labels: LabelSet, seen: dict[str, int]
) -> list[Problem]:
    from data.images import ImageError, probe_image  # torch-free; imported here to keep this module light

    problems: list[Problem] = []
    label = (row.get("label") or "").strip()
    if label not in labels:
        problems.append(Problem(n, "label", f"unknown label {label!r}; known: {', '.join(labels.names)}"))
    if not (row.get("group") or "").strip():
        problems.append(Problem(n, "group", "empty group (name the physical camera or scene)"))
    split = (row.get("split") or "").strip()
    if split and split not in SPLITS:
        problems.append(Problem(n, "split", f"{split!r} is not one of {', '.join(SPLITS)}"))
    problems += _check_coord(row, "lat", 90.0, n) + _check_coord(row, "lon", 180.0, n)
    if bool((row.get("lat") or "").strip()) != bool((row.get("lon") or "").strip()):
        problems.append(Problem(n, "lat", "lat and lon must be given together"))
    rel = (row.get("path") or "").strip()
    if not rel:
        return [*problems, Problem(n, "path", "empty path")]
    if rel in seen:
        problems.append(Problem(n, "path", f"duplicate path (first on row {seen[rel]})"))
    seen.setdefault(rel, n)
    photo = root / rel
    size = None
    if not photo.is_file():
        problems.append(Problem(n, "path", f"file not found: {photo}"))
    else:
        try:
            info = probe_image(photo)
            size = (info.width, info.height)
        except ImageError as e:
            problems.append(Problem(n, "path", f"unreadable image: {e}"))
    return problems + _check_boxes(row, n, labels, size)


def _check_boxes(
    row: dict[str, str], n: int, labels: LabelSet, size: tuple[int, int] | None
) -> list[Problem]:
    """Problems of the ``boxes`` (or legacy ``bbox``) cell; boxes are checked against the image size."""
    from data.boxes import BOXES_COLUMN, LEGACY_COLUMN, BoxError, box_problems, cell_boxes

    column = BOXES_COLUMN if (row.get(BOXES_COLUMN) or "").strip() else LEGACY_COLUMN
    label = (row.get("label") or "").strip()
    try:
        boxes = cell_boxes(row, label)
    except BoxError as e:
        return [Problem(n, column, str(e))]
    if size is None:
        return []
    return [Problem(n, column, msg) for msg in box_problems(boxes, label, *size, labels)]


def validate_manifest(path: str | Path, labels: LabelSet) -> list[Problem]:
    """Every problem of a manifest at once: bad labels, files, duplicates, coordinates, groups,
    unreadable boxes and boxes outside their image."""
    path = Path(path)
    if path.is_dir():
        manifest = _read_folder(path)
        rows = [{"path": r.path, "label": r.label, "group": r.group} for r in manifest.records]
        root = path
    else:
        rows, root = _read_rows(path), path.parent
    seen: dict[str, int] = {}
    problems: list[Problem] = []
    for n, row in enumerate(tqdm(rows, desc="validate", unit="photo", leave=False), start=1):
        problems += _check_row(row, n, root, labels, seen)
    return problems
