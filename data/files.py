"""One atomic-write helper for every file camid keeps: manifests, checkpoints, models, photos."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

TMP_SUFFIX = ".tmp"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], object], mode: int | None = 0o644) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, fsync it, then rename it onto ``path``.

    Readers see the old file or the new one, never half of one; on any error the temp file is
    removed and ``path`` is untouched. ``mode`` (default world-readable: models and manifests are
    read by other users, such as the server) is applied before the rename; ``None`` keeps the umask's.
    Temp files are named ``.<name>.<random>.tmp`` so a sweep after a crash can find them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        write(tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path
