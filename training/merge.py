"""Merge several manifests (e.g. renders + real photos) into one, split group-aware."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from data.manifest import Manifest, Record, read_manifest, write_manifest
from data.split import SplitConfig, split_manifest

log = logging.getLogger(__name__)


def _rebased(manifest: Manifest, tag: str) -> list[Record]:
    """Records with absolute paths and groups prefixed by ``tag`` (groups of two sets never merge)."""
    return [
        replace(
            r,
            path=str(manifest.resolve(r)),
            group=f"{tag}:{r.group or r.path}",
            split=None,
            extra={**r.extra, "dataset": tag},
        )
        for r in manifest.records
    ]


def merge_manifests(
    sources: list[Path],
    out_csv: Path,
    *,
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> Manifest:
    """Read ``sources``, tag each record with its dataset, re-split everything group-aware with
    ``data.split`` and write ``out_csv`` (paths relative to its folder)."""
    records: list[Record] = []
    for i, src in enumerate(sources):
        m = read_manifest(src)
        tag = f"{i}-{Path(src).parent.name if Path(src).is_file() else Path(src).name}"
        records += _rebased(m, tag)
        log.info("%s: %d photos (tag %s)", src, len(m.records), tag)
    merged = Manifest(out_csv.parent.resolve(), records)
    result = split_manifest(merged, SplitConfig(ratios=ratios, seed=seed), progress=False)
    write_manifest(result.manifest, out_csv)
    return read_manifest(out_csv)
