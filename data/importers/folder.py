"""Import a folder per class: ``ROOT/LABEL/**/*.jpg``."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from data.images import ImageError, probe_image, read_gps
from data.importers.common import ImportResult, finish, resolve_labels
from data.labels import LabelSet
from data.manifest import IMAGE_SUFFIXES, Record

log = logging.getLogger(__name__)


def _label_dirs(root: Path, labels: LabelSet) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [d.name for d in dirs if d.name not in labels]
    if unknown:
        raise ValueError(
            f"{root}: folder name(s) {', '.join(unknown)} are not camid labels; rename them to one of "
            f"{', '.join(labels.names)} (or add the class to data/labels.yaml)"
        )
    if not dirs:
        raise ValueError(f"{root}: no LABEL/ sub-folders; expected e.g. {root}/{labels.names[0]}/photo.jpg")
    return dirs


def photo_record(photo: Path, label: str, group: str, source: str, license: str) -> Record:
    """A record for a readable photo, with lat/lon from its EXIF GPS when present."""
    probe_image(photo)  # raises ImageError for anything camid cannot read
    gps = read_gps(photo)
    lat, lon = gps if gps else (None, None)
    return Record(str(photo.resolve()), label, group, source, license, lat, lon)


def import_folder(
    root: str | Path,
    out: str | Path,
    *,
    labels: LabelSet | None = None,
    source: str = "",
    license: str = "",
    progress: bool = True,
) -> ImportResult:
    """Import ``ROOT/LABEL/*`` photos (sub-folders allowed); each photo is its own group.

    Unreadable files are reported and skipped; unknown folder names are an error.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder; give a folder with one sub-folder per label")
    labels = resolve_labels(labels)
    photos = [
        (p, d.name)
        for d in _label_dirs(root, labels)
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    records, problems = [], []
    for photo, label in tqdm(photos, desc="import", unit="photo", disable=not progress, leave=False):
        rel = photo.relative_to(root).as_posix()
        try:
            records.append(photo_record(photo, label, rel, source or root.name, license))
        except (ImageError, OSError) as exc:
            problems.append(f"{rel}: {exc}")
    return finish(out, records, problems)
