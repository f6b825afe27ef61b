"""The photo folder: submitted photos named by the sha256 of the uploaded bytes, metadata stripped.

Layout under ``<data_dir>``::

    photos/ab/ab12….jpg    the moderators' copy: pixels only (EXIF-upright, no EXIF/GPS/ICC/XMP)
    public/ab/ab12….jpg    the privacy-blurred copy that leaves the moderators' eyes (exports)

Writes are atomic: a temp file in the same folder, fsync, rename, fsync of the folder. A temp
file or photo left behind by a crash is removed by :meth:`PhotoStore.sweep` on the next start.

Files are created ``0600`` and folders ``0700`` (owner only); the sweep tightens older ones.
Every folder that keeps something made from a photo is listed in :data:`DERIVATIVE_FOLDERS`, so
:meth:`PhotoStore.remove` deletes the photo and all its copies at once.
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
FILE_MODE = 0o600
DIR_MODE = 0o700
# folders under <data_dir> holding files made from a stored photo, named after its sha256; add
# any new cache (thumbnails, heatmaps, …) here so that deleting a submission removes it too
DERIVATIVE_FOLDERS = ("public",)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) as owner-only folders; tighten it when it exists."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(DIR_MODE)
    return path


def strip_metadata(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """A fresh RGB image holding only the pixels (no EXIF, GPS, ICC, XMP or comments)."""
    img = img.convert("RGB")
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return Image.fromarray(np.asarray(img, dtype=np.uint8), "RGB")


def save_jpeg(img: Image.Image, path: Path) -> None:
    """Write ``img`` atomically as a metadata-free JPEG, readable by the owner only."""
    clean = strip_metadata(img)
    private_dir(path.parent)
    write_atomic(path, lambda tmp: clean.save(tmp, "JPEG", quality=JPEG_QUALITY), mode=FILE_MODE)


class PhotoStore:
    """Photos on disk, named by content hash; see the module docstring for the layout."""

    def __init__(self, data_dir: Path) -> None:
        private_dir(data_dir)
        self.root = private_dir(data_dir / "photos")
        self.derivative_roots = [private_dir(data_dir / name) for name in DERIVATIVE_FOLDERS]
        self.public_root = self.derivative_roots[DERIVATIVE_FOLDERS.index("public")]

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

    def copies(self, rel: str) -> list[Path]:
        """The stored photo and every file made from it that exists (``<sha256>*`` in each folder)."""
        found = []
        stem = Path(rel).stem
        for root in (self.root, *self.derivative_roots):
            folder = (root / rel).parent
            if folder.is_dir():
                found += [p for p in folder.iterdir() if p.name.startswith(stem) and p.is_file()]
        return sorted(found)

    def remove(self, rel: str) -> None:
        """Delete a photo and every copy made from it (missing files are fine)."""
        for path in self.copies(rel):
            path.unlink(missing_ok=True)

    def _files(self) -> Iterator[tuple[Path, Path]]:
        for root in (self.root, *self.derivative_roots):
            for path in root.rglob("*"):
                if path.is_dir() and path.stat().st_mode & 0o077:
                    path.chmod(DIR_MODE)  # a folder made before folders were private
                elif path.is_file():
                    yield root, path

    def sweep(self, referenced: set[str], grace_s: float = 0.0) -> int:
        """Remove temp files, photos no row references and copies of them (older than ``grace_s``);
        returns the count."""
        now, removed = time.time(), 0
        stems = {Path(rel).stem for rel in referenced}
        for root, path in self._files():
            rel = path.relative_to(root).as_posix()
            kept = rel in referenced if root == self.root else path.name[:64] in stems
            orphan = path.name.endswith(TMP_SUFFIX) or not kept
            if orphan and now - path.stat().st_mtime >= grace_s:
                path.unlink(missing_ok=True)
                removed += 1
            elif path.stat().st_mode & 0o077:
                path.chmod(FILE_MODE)  # a photo stored before files were private
        if removed:
            log.info("photo sweep: removed %d orphan or temporary file(s)", removed)
        return removed
