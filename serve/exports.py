"""Exports of moderated submissions: a training manifest with blurred photos, and the camera map.

- training: one row per distinct verified photo, in the project's manifest columns
  (``path,label,group,source,license,lat,lon``) plus ``boxes`` (:mod:`data.boxes`); ``path`` is
  ``photos/<sha256>.jpg`` relative to the manifest, so the zip and folder exports resolve it;
  ``group`` is the registry's physical camera (:mod:`serve.registry.groups`), so every photo of
  one camera stays in one split; photos showing no camera fall back to 50 m location clusters;
  ``boxes`` are the verified boxes in pixels of the exported photo.
- cameras: one point per physical camera of the registry (:mod:`serve.registry.public` writes
  the GeoJSON, CSV and KML with the columns below); no stored photos, no notes; the location
  rounded (``public_location_decimals``, 4: ~10 m) and dates without the time of day, so the
  export does not pinpoint where and when someone stood.

Every photo that leaves through here is the privacy-blurred copy (:mod:`serve.privacy`).
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from data.boxes import BOXES_COLUMN, format_boxes
from data.images import load_image
from data.manifest import Manifest, Record, write_manifest
from serve.privacy import blur_sensitive
from serve.registry.groups import camera_groups, group_photos
from serve.store import Store, Submission
from serve.store.photos import MAX_SIDE, save_jpeg
from serve.store.store import stored_boxes

log = logging.getLogger(__name__)

PUBLIC_LOCATION_DECIMALS = 4  # ~11 m north-south, ~8 m east-west in Belgrade
LICENSE = "contributed to #hiljadekamera (moderated camid submission)"
CAMERA_CSV_COLUMNS = (
    "id",
    "lat",
    "lon",
    "model",
    "label",
    "form_factor",
    "first_seen",
    "last_seen",
    "photo_count",
    "source",
)


def stored_size(sub: Submission) -> tuple[int, int]:
    """The size the store's downscaling rule gives the photo (longer side at most ``MAX_SIDE``)."""
    scale = min(1.0, MAX_SIDE / max(sub.width, sub.height))
    return round(sub.width * scale), round(sub.height * scale)


def exported_size(store: Store, sub: Submission) -> tuple[int, int]:
    """The size of a submission's exported photo: its stored photo's (blurring keeps the size)."""
    try:
        with Image.open(store.photos.path(sub.photo)) as img:
            return img.size
    except OSError:  # missing or unreadable: the zip export fails on it anyway
        return stored_size(sub)


def export_boxes(sub: Submission, size: tuple[int, int]) -> str:
    """The ``boxes`` cell of a verified submission, in pixels of its exported photo of ``size``.

    The store keeps boxes in pixels of the upright original photo; the exported photo is the
    stored one (upright too, but downscaled when its longer side exceeds 4096 px), so the boxes
    are scaled by the two sizes' ratio.
    """
    sx, sy = size[0] / sub.width, size[1] / sub.height
    return format_boxes(b.scaled(sx, sy) for b in stored_boxes(sub.boxes))


def verified_records(store: Store) -> list[Record]:
    """The training manifest's records of the store's verified submissions (see training_records),
    grouped by the camera registry's physical cameras."""
    return training_records(store.verified(), lambda sub: exported_size(store, sub), camera_groups(store))


def training_records(
    subs: Sequence[Submission],
    photo_size: Callable[[Submission], tuple[int, int]] = stored_size,
    groups: dict[str, str] | None = None,
) -> list[Record]:
    """Manifest records for verified submissions, one per distinct photo (sha256), moderators' labels.

    Rejected and pending submissions carry no label and are left out. A photo sent more than once
    is exported once; if moderators verified its submissions with different labels, it is left
    out (and logged) rather than exported with one of them picked at random. Its boxes are those
    of its most recently reviewed submission that has boxes; ``photo_size`` gives the exported
    photo's size, which the boxes are scaled to.
    """
    groups = groups if groups is not None else group_photos(subs, {})
    by_photo: dict[str, list[Submission]] = {}
    for sub in subs:
        if sub.final_label is not None:
            by_photo.setdefault(sub.sha256, []).append(sub)
    records = []
    for sha, same in by_photo.items():
        labels = sorted({str(s.final_label) for s in same})
        if len(labels) > 1:
            ids = ", ".join(s.id for s in same)
            log.warning(
                "photo %s left out of the training export: submissions %s say %s", sha[:12], ids, labels
            )
            continue
        sub = same[0]
        boxed = [s for s in same if s.boxes is not None]
        boxes = export_boxes(max(boxed, key=lambda s: s.updated_at), photo_size(sub)) if boxed else ""
        records.append(
            Record(
                path=f"photos/{sub.sha256}.jpg",
                label=labels[0],
                group=groups[sub.id],
                source=f"camid-submission/{sub.id}",
                license=LICENSE,
                lat=sub.lat,
                lon=sub.lon,
                extra={BOXES_COLUMN: boxes},
            )
        )
    return records


def public_photo(store: Store, rel: str) -> Path:
    """The blurred copy of a stored photo, made (and cached under ``public/``) on first use."""
    target = store.photos.public_path(rel)
    if not target.is_file():
        blurred, _ = blur_sensitive(load_image(store.photos.path(rel)))
        save_jpeg(blurred, target)
    return target


def _photo_rel(record: Record) -> str:
    sha = Path(record.path).stem
    return f"{sha[:2]}/{sha}.jpg"


def training_csv(records: Iterable[Record]) -> str:
    """The manifest as CSV text (paths relative to the zip/folder export's root)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", "group", "source", "license", "lat", "lon", BOXES_COLUMN])
    for r in records:
        coords = ["" if v is None else repr(round(v, 7)) for v in (r.lat, r.lon)]
        boxes = r.extra.get(BOXES_COLUMN, "")
        writer.writerow([r.path, r.label, r.group, r.source, r.license, *coords, boxes])
    return buf.getvalue()


def export_training(store: Store, out_dir: Path) -> Path:
    """Write ``out_dir/photos/*.jpg`` (blurred) and ``out_dir/manifest.csv``; returns the manifest path.

    ``camid train --data out_dir/manifest.csv`` reads it as is.
    """
    out_dir = out_dir.resolve()
    records = verified_records(store)
    for r in records:
        target = out_dir / r.path
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(public_photo(store, _photo_rel(r)).read_bytes())
    return write_manifest(Manifest(out_dir, records), out_dir / "manifest.csv")


def write_training_zip(store: Store, fileobj: Any) -> int:
    """Write a zip of ``manifest.csv`` + ``photos/`` (blurred) to ``fileobj``; returns the photo count."""
    records = verified_records(store)
    for chunk in training_zip_chunks(store, records):
        fileobj.write(chunk)
    return len(records)


class _Sink(io.RawIOBase):
    """A write-only stream that hands out what was written since the last :meth:`take`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._pos += len(chunk)
        return len(chunk)

    def tell(self) -> int:  # no seek(): zipfile then writes a streamable archive
        return self._pos

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def training_zip_chunks(store: Store, records: Sequence[Record]) -> Iterator[bytes]:
    """The training zip as it is built: the manifest first, then one chunk per blurred photo.

    Each photo is blurred (or taken from the ``public/`` cache) just before it is sent, so a
    download starts at once and its progress is the number of photos received out of
    ``len(records)``; nothing is held in memory or on disk beyond the current photo.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("manifest.csv", training_csv(records))
        yield sink.take()
        for r in records:
            zf.write(public_photo(store, _photo_rel(r)), r.path)
            yield sink.take()
    yield sink.take()  # the central directory
