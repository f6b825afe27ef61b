"""Merge several manifests (renders, real photo sets, moderated exports) into one, split group-aware."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from data.boxes import BOXES_COLUMN, BoxError, format_boxes, record_boxes
from data.manifest import Manifest, Record, read_manifest, write_manifest
from data.split import SplitConfig, SplitResult, split_manifest

log = logging.getLogger(__name__)


def _tag(index: int, source: Path) -> str:
    return f"{index}-{source.parent.name if source.is_file() else source.name}"


def _tagged_group(tag: str, record: Record) -> str:
    return f"{tag}:{record.group or record.path}"


def source_group(record: Record) -> str:
    """A merged record's group as its own set names it (the merge prefixes it with the set's tag,
    so that two sets' groups never join by name); other records' group as it is."""
    tag = record.extra.get("dataset", "")
    return record.group.removeprefix(f"{tag}:") if tag else record.group


def _boxes_cell(record: Record, source: Path) -> str:
    """The record's ``boxes`` cell, read from its legacy ``bbox`` column where it has none."""
    try:
        return format_boxes(record_boxes(record))
    except BoxError as e:
        raise ValueError(f"{source}: {e}; run `camid data validate {source}`") from None


def _rebased(manifest: Manifest, tag: str, source: Path) -> list[Record]:
    """Records with absolute paths and groups prefixed by ``tag``, so two sets' groups never merge
    by name (duplicates across sets are still joined by the split's dedup), and their boxes in the
    ``boxes`` column."""
    return [
        replace(
            r,
            path=str(manifest.resolve(r)),
            group=_tagged_group(tag, r),
            split=None,
            extra={**r.extra, "dataset": tag, BOXES_COLUMN: _boxes_cell(r, source)},
        )
        for r in manifest.records
    ]


def merge_manifests(
    sources: list[Path],
    out_csv: Path,
    config: SplitConfig = SplitConfig(),  # noqa: B008 - frozen dataclass
    *,
    negatives_from: Sequence[Path] = (),
    negative: str = "no_camera",
    progress: bool = True,
) -> tuple[Path, SplitResult]:
    """Read ``sources``, tag each record with its dataset (extra column ``dataset``), re-split the
    union group-aware and write ``out_csv`` (paths relative to its folder). Every record's boxes
    land in the ``boxes`` column (a legacy ``bbox`` cell is read into it and kept as it is).
    Of each manifest in ``negatives_from`` only the photos labelled ``negative`` are merged (e.g.
    the real photos without a camera, so that the real camera photos stay unseen by training)."""
    records: list[Record] = []
    every = [*((Path(s), False) for s in sources), *((Path(s), True) for s in negatives_from)]
    if not every:
        raise ValueError("nothing to merge: give at least one manifest")
    for i, (src, only_negatives) in enumerate(every):
        manifest = read_manifest(src)
        if only_negatives:
            kept = [r for r in manifest.records if r.label == negative]
            if not kept:
                raise ValueError(f"{src}: no photo labelled {negative!r} to take from it (--negatives-from)")
            log.info("%s: %d of %d photos are labelled %s; the others are left out",
                     src, len(kept), len(manifest.records), negative)  # fmt: skip
            manifest = manifest.with_records(kept)
        tag = _tag(i, src)
        records += _rebased(manifest, tag, src)
        log.info("%s: %d photos (dataset %s)", src, len(manifest.records), tag)
    merged = Manifest(Path(out_csv).parent.resolve(), records)
    result = split_manifest(merged, config, progress=progress)
    return write_manifest(result.manifest, out_csv), result
