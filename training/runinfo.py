"""Run-folder bookkeeping: seeds, log file, git commit, JSON files."""

from __future__ import annotations

import json
import logging
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def git_commit(repo: Path = REPO) -> str | None:
    """The checked-out commit (``+dirty`` when the tree has changes), or None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def add_log_file(path: Path) -> logging.Handler:
    """Send INFO logs of camid's packages to ``path`` too (returns the handler to remove later)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    for name in ("training", "model", "data"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    return handler


def remove_log_file(handler: logging.Handler) -> None:
    for name in ("training", "model", "data"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def write_json(path: Path, obj: Any) -> Path:
    """Pretty JSON (NaN written as null)."""
    from training.evaluate import _nan_to_none

    path.write_text(json.dumps(_nan_to_none(obj), indent=2, default=str), encoding="utf-8")
    return path


def trained_on(
    manifest_path: Path, mhash: str, counts: dict[str, dict[str, int]], **more: Any
) -> dict[str, Any]:
    """Provenance stored in the contract: manifest, its hash, counts per split, git commit, extras."""
    return {
        "manifest": str(Path(manifest_path).resolve()),
        "manifest_hash": mhash,
        "counts": counts,
        "git_commit": git_commit(),
        **more,
    }
