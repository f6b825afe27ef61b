"""The photo folder: submitted photos named by the sha256 of the uploaded bytes, metadata stripped.

Layout under ``<data_dir>``::

    photos/ab/ab12….jpg    the moderators' copy: pixels only (EXIF-upright, no EXIF/GPS/ICC/XMP)
    public/ab/ab12….jpg    the privacy-blurred copy that leaves the moderators' eyes (exports)

Writes are atomic: a temp file in the same folder, fsync, rename, fsync of the folder. A temp
file or photo left behind by a crash is removed by :meth:`PhotoStore.sweep` on the next start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from data.files import TMP_SUFFIX
from data.files import atomic_write as write_atomic

log = logging.getLogger(__name__)

JPEG_QUALITY = 92
MAX_SIDE = 4096  # longer photos are downscaled when stored; more detail does not help moderators


def strip_metadata(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """A fresh RGB image holding only the pixels (no EXIF, GPS, ICC, XMP or comments)."""
    img = img.convert("RGB")
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return Image.fromarray(np.asarray(img, dtype=np.uint8), "RGB")


def save_jpeg(img: Image.Image, path: Path) -> None:
    """Write ``img`` atomically as a metadata-free JPEG."""
    clean = strip_metadata(img)
    write_atomic(path, lambda tmp: clean.save(tmp, "JPEG", quality=JPEG_QUALITY), mode=None)


class PhotoStore:
    """Photos on disk, named by content hash; see the module docstring for the layout."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "photos"
        self.public_root = data_dir / "public"
        self.root.mkdir(parents=True, exist_ok=True)
        self.public_root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def relpath(sha256: str) -> str:
        """Where a photo with this upload hash lives, relative to the photo folder."""
        return f"{sha256[:2]}/{sha256}.jpg"

    def path(self, rel: str) -> Path:
        """Absolute path of a stored photo."""
        return self.root / rel

    def public_path(self, rel: str) -> Path:
        """Absolute path of the blurred copy of a stored photo (may not exist yet)."""
        return self.public_root / rel

    def put(self, sha256: str, img: Image.Image) -> tuple[str, bool]:
        """Store a photo unless one with this hash exists; returns (relative path, newly written)."""
        rel = self.relpath(sha256)
        target = self.path(rel)
        if target.is_file():
            return rel, False
        save_jpeg(img, target)
        return rel, True

    def remove(self, rel: str) -> None:
        """Delete a photo and its blurred copy (missing files are fine)."""
        self.path(rel).unlink(missing_ok=True)
        self.public_path(rel).unlink(missing_ok=True)

    def _files(self) -> Iterator[tuple[Path, Path]]:
        for root in (self.root, self.public_root):
            for path in root.rglob("*"):
                if path.is_file():
                    yield root, path

    def sweep(self, referenced: set[str], grace_s: float = 0.0) -> int:
        """Remove temp files and photos no row references (older than ``grace_s``); returns the count."""
        now, removed = time.time(), 0
        for root, path in self._files():
            rel = path.relative_to(root).as_posix()
            orphan = path.name.endswith(TMP_SUFFIX) or rel not in referenced
            if orphan and now - path.stat().st_mtime >= grace_s:
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.info("photo sweep: removed %d orphan or temporary file(s)", removed)
        return removed
