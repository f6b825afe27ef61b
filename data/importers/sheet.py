"""Import the initiative's verification spreadsheet (CSV exported from the shared sheet).

Columns are named by flags (photo, camera model, lat, lon, date, location). The camera-model text
becomes a label (``6625`` -> huawei_ipc6625_z30, ``6225`` -> huawei_ipc6225_vrz_es, any other
text -> other_camera, overridable); photos are looked up by file name in a local folder (URLs
are never downloaded: the file name is taken from the URL path). Rows whose photo is missing are
reported and the import goes on. Photos of one place share a group: same location text, or GPS
within ``radius_m`` metres of each other.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from data.dedup import UnionFind
from data.images import ImageError, probe_image, read_gps
from data.importers.common import ImportResult, check_labels, finish, resolve_labels
from data.labels import LabelSet
from data.manifest import IMAGE_SUFFIXES, Record
from data.split import nearby_pairs

log = logging.getLogger(__name__)

DEFAULT_MODEL_MAP: dict[str, str] = {"6625": "huawei_ipc6625_z30", "6225": "huawei_ipc6225_vrz_es"}
FALLBACK_LABEL = "other_camera"


@dataclass(frozen=True)
class SheetColumns:
    """Which spreadsheet column holds what (header names, matched case-insensitively)."""

    photo: str = "photo"
    model: str = "model"
    lat: str | None = "lat"
    lon: str | None = "lon"
    date: str | None = "date"
    location: str | None = "location"


@dataclass(frozen=True)
class SheetOptions:
    """Columns, model-text mapping, where the photos are, grouping radius, provenance."""

    columns: SheetColumns = field(default_factory=SheetColumns)
    model_map: Mapping[str, str] = field(default_factory=dict)
    radius_m: float = 50.0
    source: str = ""
    license: str = ""


def label_for_model(text: str, model_map: Mapping[str, str]) -> str | None:
    """Camera-model text -> label: user map first (substring, case-insensitive), then defaults."""
    text = text.strip().lower()
    if not text:
        return None
    for needle, label in [*model_map.items(), *DEFAULT_MODEL_MAP.items()]:
        if needle.lower() in text:
            return label
    return FALLBACK_LABEL


def photo_name(value: str) -> str:
    """The file name a cell refers to: the last path part of a URL or a path."""
    value = value.strip()
    if "://" in value:
        value = unquote(urlparse(value).path)
    return PurePosixPath(value.replace("\\", "/")).name


class PhotoFinder:
    """Looks up photos in a folder by relative path or by file name (indexed once)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.by_name: dict[str, Path] = {}
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                self.by_name.setdefault(p.name.lower(), p)

    def find(self, value: str) -> Path | None:
        if value.strip() and "://" not in value:
            direct = self.folder / value.strip()
            if direct.is_file():
                return direct
        name = photo_name(value)
        return self.by_name.get(name.lower()) if name else None


def read_sheet(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV with any of , ; or tab as separator (header keys lower-cased and stripped)."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in rows]


def _coord(text: str, limit: float) -> float | None:
    text = text.strip().replace(",", ".") if text.count(",") == 1 and "." not in text else text.strip()
    if not text:
        return None
    value = float(text)  # ValueError is reported by the caller
    if abs(value) > limit:
        raise ValueError(f"{value} is outside -{limit}..{limit}")
    return value


def _check_columns(rows: Sequence[dict[str, str]], columns: SheetColumns, path: Path) -> None:
    header = set(rows[0]) if rows else set()
    wanted = {"--photo-col": columns.photo, "--model-col": columns.model}
    missing = [f"{flag} {name!r}" for flag, name in wanted.items() if name.lower() not in header]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)}; columns are: {', '.join(sorted(header))}")


def _row_record(row: dict[str, str], finder: PhotoFinder, options: SheetOptions) -> Record:
    """One sheet row -> record (group filled in later); ValueError says what is wrong with it."""
    cols = options.columns

    def get(name: str | None) -> str:
        return row.get(name.lower(), "") if name else ""

    label = label_for_model(get(cols.model), options.model_map)
    if label is None:
        raise ValueError(f"empty camera model in column {cols.model!r}")
    photo = finder.find(get(cols.photo))
    if photo is None:
        raise ValueError(f"photo {get(cols.photo)!r} not found in {finder.folder}")
    probe_image(photo)
    try:
        lat, lon = _coord(get(cols.lat), 90.0), _coord(get(cols.lon), 180.0)
    except ValueError as exc:
        raise ValueError(f"bad lat/lon ({exc})") from exc
    if lat is None or lon is None:
        lat, lon = read_gps(photo) or (None, None)
    extra = {"camera_model": get(cols.model), "date": get(cols.date), "location": get(cols.location)}
    source = options.source or "hiljadekamera-sheet"
    return Record(str(photo.resolve()), label, "", source, options.license, lat, lon, extra=extra)


def _place_groups(records: list[Record], radius_m: float) -> list[Record]:
    """Group photos of one place: same location text, or GPS within ``radius_m`` of each other."""
    uf = UnionFind(len(records))
    first: dict[str, int] = {}
    for i, r in enumerate(records):
        place = " ".join(r.extra.get("location", "").lower().split())
        if place:
            uf.union(first.setdefault(place, i), i)
    for i, j in nearby_pairs(records, radius_m, only_ungrouped=False):
        uf.union(i, j)
    out = list(records)
    for members in uf.components():
        head = records[members[0]]
        if head.lat is not None and head.lon is not None:
            name = f"loc:{head.lat:.5f},{head.lon:.5f}"
        elif head.extra.get("location"):
            name = f"loc:{head.extra['location']}"
        else:
            name = f"photo:{Path(head.path).name}"
        for i in members:
            out[i] = Record(**{**records[i].__dict__, "group": name})
    return out


def import_sheet(
    sheet: str | Path,
    photos: str | Path,
    out: str | Path,
    options: SheetOptions = SheetOptions(),  # noqa: B008 - frozen dataclass
    *,
    labels: LabelSet | None = None,
) -> ImportResult:
    """Import a verification-sheet CSV whose photos are in the folder ``photos``."""
    sheet, photos = Path(sheet), Path(photos)
    if not photos.is_dir():
        raise ValueError(f"{photos}: photo folder not found; pass --photos DIR with the downloaded photos")
    labels = resolve_labels(labels)
    check_labels({**DEFAULT_MODEL_MAP, **options.model_map, "": FALLBACK_LABEL}, labels)
    rows = read_sheet(sheet)
    _check_columns(rows, options.columns, sheet)
    finder = PhotoFinder(photos)
    records, problems = [], []
    for n, row in enumerate(rows, start=2):  # row 1 is the header, as in the spreadsheet
        try:
            records.append(_row_record(row, finder, options))
        except (ValueError, ImageError, OSError) as exc:
            problems.append(f"{sheet.name} row {n}: {exc}")
    return finish(out, _place_groups(records, options.radius_m), problems)
