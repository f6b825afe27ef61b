"""Merge several manifests (renders, real photo sets, moderated exports) into one, split group-aware."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from data.manifest import Manifest, Record, read_manifest, write_manifest
from data.split import SplitConfig, SplitResult, split_manifest

log = logging.getLogger(__name__)


def _tag(index: int, source: Path) -> str:
    return f"{index}-{source.parent.name if source.is_file() else source.name}"


def _rebased(manifest: Manifest, tag: str) -> list[Record]:
    """Records with absolute paths and groups prefixed by ``tag``, so two sets' groups never merge
    by name (duplicates across sets are still joined by the split's dedup)."""
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
    config: SplitConfig = SplitConfig(),  # noqa: B008 - frozen dataclass
    *,
    progress: bool = True,
) -> tuple[Path, SplitResult]:
    """Read ``sources``, tag each record with its dataset (extra column ``dataset``), re-split the
    union group-aware and write ``out_csv`` (paths relative to its folder)."""
    records: list[Record] = []
    for i, src in enumerate(sources):
        manifest = read_manifest(src)
        tag = _tag(i, Path(src))
        records += _rebased(manifest, tag)
        log.info("%s: %d photos (dataset %s)", src, len(manifest.records), tag)
    merged = Manifest(Path(out_csv).parent.resolve(), records)
    result = split_manifest(merged, config, progress=progress)
    return write_manifest(result.manifest, out_csv), result
